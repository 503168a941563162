"""Parameter groups with their own schedules, trained through the real loop on the tiny model: each group's rate at
each step (CSV columns, progress events, the web UI's status), a group at rate 0 held still, the run's end by the
longest schedule, and a resume with several groups that equals the uninterrupted run."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from train_helpers import settings

from oneword.embeddings.formats import load_embedding_file
from oneword.kinds.embedding import EmbeddingTrainable
from oneword.models.tiny import build_tiny
from oneword.safeload import load_pickle
from oneword.train import events, loop
from oneword.train.groups import ParamGroup
from oneword.train.speed import make_optimizer


class SplitVectors(EmbeddingTrainable):
    """An embedding's vectors in two groups: the first vector (`first`) and the others (`rest`), each with its own
    schedule string."""

    def __init__(self, whole: EmbeddingTrainable, schedules: tuple[str, str]) -> None:
        self.name, self.base, self.schedules = whole.name, whole.base, schedules
        self.parts = {key: (torch.nn.Parameter(p.detach()[:1].clone()), torch.nn.Parameter(p.detach()[1:].clone()))
                      for key, p in whole.params.items()}

    def parameters(self) -> list[torch.Tensor]:
        return [t for parts in self.parts.values() for t in parts]

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        return [ParamGroup("first", [first for first, _ in self.parts.values()], self.schedules[0]),
                ParamGroup("rest", [rest for _, rest in self.parts.values()], self.schedules[1], weight_decay=0.01)]

    def _live(self):
        return dataclasses.replace(self.base, vectors={key: torch.cat(parts) for key, parts in self.parts.items()})

    def snapshot(self, step: int):
        vectors = {key: torch.cat(parts).detach().to("cpu", torch.float32).clone() for key, parts in self.parts.items()}
        return dataclasses.replace(self.base, vectors=vectors, step=step)


@pytest.fixture
def two_groups(monkeypatch):
    """Runs set up from now on train SplitVectors with the schedules given (a function of the two strings)."""
    real = loop.starting_point

    def use(first: str, rest: str) -> None:
        def start(*args, **kwargs):
            begin = real(*args, **kwargs)
            begin.trainable = SplitVectors(begin.trainable, (first, rest))
            return begin

        monkeypatch.setattr("oneword.train.loop.starting_point", start)

    monkeypatch.setattr("oneword.train.loop.PROGRESS_EVERY", 1)
    return use


def _fit(config, stop_after: int | None = None):
    """Set up and fit a run; returns (finished, the vectors after each step by step, every event)."""
    run = loop.setup(config, build_tiny("sd1", seed=0))
    seen = {run.start_step: run.trainable.snapshot(run.start_step).vectors["*"]}
    progress = []

    def listen(event):
        progress.append(event)
        if isinstance(event, events.Progress):
            seen[event.step] = run.trainable.snapshot(event.step).vectors["*"]

    finished = loop.fit(run, listen, stop=lambda: stop_after is not None and max(seen) >= stop_after)
    return finished, seen, progress


def _rates(finished):
    lines = (finished.log_folder / "textual_inversion_loss.csv").read_text().splitlines()
    return lines[0], [tuple(row.split(",")[i] for i in (0, 4, 5)) for row in lines[1:]]


def test_each_group_follows_its_schedule_and_a_group_at_rate_0_does_not_move(tmp_path, two_groups):
    two_groups("0.01:4, 0.001", "0:3, 0.05")
    finished, seen, sent = _fit(settings(tmp_path, vectors=2, max_steps=7, csv_every=1, save_every=0))
    progress = [e for e in sent if isinstance(e, events.Progress)]
    assert (finished.reason, finished.step) == ("done", 7)
    header, rows = _rates(finished)
    assert header == "step,epoch,epoch_step,loss,learn_rate,learn_rate_rest,val_loss"
    assert rows == [("1", "0.01", "0.0"), ("2", "0.01", "0.0"), ("3", "0.01", "0.0"), ("4", "0.01", "0.05"),
                    ("5", "0.001", "0.05"), ("6", "0.001", "0.05"), ("7", "0.001", "0.05")]
    assert [(e.step, e.learn_rate, e.learn_rates) for e in progress[2:5]] == [
        (3, 0.01, {"first": 0.01, "rest": 0.0}), (4, 0.01, {"first": 0.01, "rest": 0.05}),
        (5, 0.001, {"first": 0.001, "rest": 0.05})]
    start = seen[0]
    for step in (1, 2, 3):  # rest at rate 0 (and its weight decay times 0): bit-equal to the start
        assert torch.equal(seen[step][1:], start[1:])
        assert not torch.equal(seen[step][:1], seen[step - 1][:1])
    assert not torch.equal(seen[4][1:], start[1:])


def test_the_run_ends_when_the_longest_schedule_runs_out_and_an_ended_group_stays_still(tmp_path, two_groups):
    two_groups("0.01:4", "0.05:6")
    finished, seen, _ = _fit(settings(tmp_path, vectors=2, max_steps=100, csv_every=1, save_every=0))
    assert (finished.reason, finished.step) == ("schedule", 6)
    assert _rates(finished)[1][3:] == [("4", "0.01", "0.05"), ("5", "0.0", "0.05"), ("6", "0.0", "0.05")]
    assert torch.equal(seen[6][:1], seen[4][:1]) and not torch.equal(seen[6][1:], seen[4][1:])


def test_resume_with_two_groups_equals_the_uninterrupted_run(tmp_path, two_groups):
    two_groups("0.01:4, 0.001", "0:3, 0.05")
    whole, _, _ = _fit(settings(tmp_path / "whole", vectors=2, max_steps=8, save_every=4, latent_sampling="random"))
    cut = settings(tmp_path / "cut", vectors=2, max_steps=8, save_every=4, latent_sampling="random")
    stopped, _, _ = _fit(cut, stop_after=5)
    assert (stopped.reason, stopped.step) == ("interrupted", 5)
    state = load_pickle(stopped.log_folder / "embeddings" / "zqx-5.pt.optim")["optimizer_state_dict"]
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in state["param_groups"]] == [
        (0.001, 0.0, 1), (0.05, 0.01, 1)]
    resumed, _, sent = _fit(dataclasses.replace(cut, resume=True))
    assert (resumed.reason, resumed.step, resumed.log_folder) == ("done", 8, stopped.log_folder)
    assert sent[0].start_step == 5 and not any("--resume" in note for note in sent[0].notes)  # AdamW's moments too
    a = load_embedding_file(whole.log_folder / "embeddings" / "zqx-8.pt").vectors["*"]
    b = load_embedding_file(resumed.log_folder / "embeddings" / "zqx-8.pt").vectors["*"]
    assert torch.equal(a, b)
    rows = [("3", "0.01", "0.0"), ("6", "0.001", "0.05"), ("8", "0.001", "0.05")]
    assert _rates(whole)[1] == rows and _rates(resumed)[1] == [rows[0], ("5", "0.001", "0.05"), *rows[1:]]


def test_a_state_of_other_groups_is_not_resumed_into_the_run(tmp_path, two_groups, monkeypatch):
    from oneword.train.start import starting_point

    two_groups("0.01", "0.05")
    config = settings(tmp_path, vectors=2, max_steps=3, save_every=0)
    _fit(config)
    monkeypatch.setattr("oneword.train.loop.starting_point", starting_point)  # the embedding's one group again
    resumed, _, sent = _fit(dataclasses.replace(config, max_steps=5, resume=True))
    assert (resumed.reason, resumed.step) == ("done", 5)
    note = ("--resume: zqx-3.pt.optim is for 2 parameter groups ([1, 1] tensors), this run trains 1 ([1]); "
            "Adam's moments start from zero")
    assert [n for n in sent[0].notes if "--resume" in n] == [note]


def test_one_group_builds_the_optimizer_as_before(tmp_path):
    params = [torch.nn.Parameter(torch.ones(2, 4))]
    config = settings(tmp_path)
    built = make_optimizer([ParamGroup("vectors", params, "0.005", 0.0)], (0.005,), config, torch.device("cpu"))
    before = torch.optim.AdamW(params, lr=0.005, weight_decay=0.0, fused=True)
    assert list(built.state_dict()["param_groups"][0].items()) == list(before.state_dict()["param_groups"][0].items())


def test_the_web_ui_shows_each_groups_rate(tmp_path, two_groups):
    from oneword.ui.charts import status_line
    from oneword.ui.jobs import Jobs, JobState

    two_groups("0.01:4, 0.001", "0:3, 0.05")
    jobs = Jobs(lambda name, **options: build_tiny("sd1", seed=0))
    jobs.start(settings(tmp_path, vectors=2, max_steps=5, save_every=0), device="cpu").join(120)
    state = jobs.state()
    assert (state.status, state.learn_rate, state.learn_rates) == ("finished", 0.001, {"first": 0.001, "rest": 0.05})
    running = dataclasses.replace(state, status="running", steps_per_second=0.0, log_folder=None)
    assert status_line(running).endswith("step 5/5 · lr first 0.001, rest 0.05")
    one = JobState(status="running", name="zqx", step=2, total_steps=5, learn_rate=0.005,
                   learn_rates={"vectors": 0.005})
    assert status_line(one) == "**running** zqx: step 2/5 · lr 0.005"


def test_bad_groups_are_refused_in_one_line_naming_each_problem():
    from oneword.errors import OnewordError
    from oneword.train.groups import GroupSchedules

    tensor = [torch.zeros(1)]
    groups = [ParamGroup("vectors", tensor, "0.005"), ParamGroup("learn,rate", tensor, "0.01"),
              ParamGroup("vectors", tensor, "0.01:x", option="--gain-rate")]
    with pytest.raises(OnewordError) as caught:
        GroupSchedules.parse(groups, 10)
    assert str(caught.value) == (
        "parameter group 'vectors' is named 2 times; parameter group 'learn,rate': a name is letters, digits and "
        "'_'; --gain-rate '0.01:x': entry 1 '0.01:x': step 'x' is not a whole number")
