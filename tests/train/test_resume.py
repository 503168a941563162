"""`--resume` continues a run from its last saved state, as one history: the best of the whole run ends as NAME.pt,
a finished run is left alone, another base model is refused, and two runs of one name never write at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from cli_helpers import run_in_process
from train_helpers import settings

from oneword.embeddings.formats import load_embedding_file
from oneword.errors import OnewordError
from oneword.models.tiny import build_tiny
from oneword.safeload import load_pickle
from oneword.train import events
from oneword.train.loop import train
from oneword.ui.jobs import JobState, _apply


class StepScorer:
    """A score given by step (what ranks the checkpoints, under test here)."""

    key = "fake"

    def __init__(self, by_step):
        self.by_step = by_step

    def score(self, context):
        return {"fake": self.by_step.get(context.snapshot.step, 0.1)}


SCORES = {4: 0.9, 8: 0.5, 12: 0.7}
"""The best checkpoint is step 4, long before the last."""


def _stop_at(step: int):
    def stop_request(event):
        if isinstance(event, events.Progress) and event.step >= step:
            os.kill(os.getpid(), 2)  # Ctrl-C

    return stop_request


def vectors(path):
    return load_embedding_file(path).vectors["*"]


def test_ctrl_c_after_the_best_then_resume_keeps_the_whole_runs_best_and_history(tmp_path, monkeypatch):
    monkeypatch.setattr("oneword.train.loop.PROGRESS_EVERY", 1)  # a chart point per step
    config = dict(max_steps=12, save_every=4, csv_every=2)
    stopped = train(settings(tmp_path, **config), build_tiny("sd1", seed=0), _stop_at(6),
                    scorers=[StepScorer(SCORES)])
    assert (stopped.reason, stopped.step, stopped.best_step) == ("interrupted", 6, 4)
    page = JobState()  # what the web UI's charts draw
    resumed = train(settings(tmp_path, resume=True, **config), build_tiny("sd1", seed=0), lambda e: _apply(page, e),
                    scorers=[StepScorer(SCORES)])
    assert (resumed.reason, resumed.step, resumed.best_step) == ("done", 12, 4)
    assert [r.step for r in resumed.records] == [4, 6, 8, 12]
    root = resumed.log_folder
    assert root == stopped.log_folder
    best = load_pickle(resumed.embedding_path)
    assert (best["step"], best["name"]) == (4, "zqx")
    assert torch.equal(vectors(resumed.embedding_path), vectors(root / "embeddings" / "zqx-4.pt"))
    rows = (root / "checkpoints.csv").read_text().splitlines()
    assert [(r.split(",")[0], r.split(",")[-1]) for r in rows[1:]] == [("4", "*"), ("6", ""), ("8", ""), ("12", "")]
    losses = (root / "textual_inversion_loss.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in losses[1:]] == ["2", "4", "6", "8", "10", "12"]
    history = load_pickle(root / "embeddings" / "zqx-12.pt.optim")["history"]
    assert [s for s, _ in history["train"]] == list(range(1, 13))  # loss.png draws all of it
    assert [step for step, _, _ in page.train_loss] == list(range(1, 13))
    assert [r.step for r in page.records] == [4, 6, 8, 12] and page.best_step == 4


def test_resume_continues_the_last_state_not_the_best(tmp_path):
    whole = train(settings(tmp_path / "whole", max_steps=16, save_every=4), build_tiny("sd1", seed=0),
                  scorers=[StepScorer(SCORES)])
    first = train(settings(tmp_path / "cut", max_steps=12, save_every=4), build_tiny("sd1", seed=0),
                  scorers=[StepScorer(SCORES)])
    assert load_embedding_file(first.embedding_path).step == 4
    seen = []
    more = train(settings(tmp_path / "cut", max_steps=16, save_every=4, resume=True), build_tiny("sd1", seed=0),
                 seen.append, scorers=[StepScorer(SCORES)])
    started = next(e for e in seen if isinstance(e, events.Started))
    assert started.start_step == 12 and not any("moments start" in n for n in started.notes)
    a = vectors(whole.log_folder / "embeddings" / "zqx-16.pt")
    b = vectors(more.log_folder / "embeddings" / "zqx-16.pt")
    assert torch.equal(a, b)  # the last vectors and AdamW moments, as if never stopped
    assert more.best_step == 4 and load_embedding_file(more.embedding_path).step == 4


def _files(root):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


def test_resume_of_a_finished_run_changes_nothing_and_says_so(tmp_path, monkeypatch, capsys):
    from train_helpers import write_images

    write_images(tmp_path / "data")
    args = ["train", "zqx", "--model", "tiny-sd1", "--data", str(tmp_path / "data"), "--log-dir",
            str(tmp_path / "log"), "--embeddings-dir", str(tmp_path / "emb"), "--max-steps", "4", "--save-every", "2",
            "--preview-every", "0", "--batch-size", "2"]
    code, _, err = run_in_process(monkeypatch, capsys, *args)
    assert code == 0, err
    before = _files(tmp_path)
    code, out, err = run_in_process(monkeypatch, capsys, *args, "--resume")
    assert code == 0, err
    assert out.splitlines() == ["zqx is already trained to step 4 (--max-steps 4); nothing to do: give a larger "
                                "--max-steps to train it further"]
    assert _files(tmp_path) == before


def test_resume_on_another_base_model_is_refused_naming_both(tmp_path):
    train(settings(tmp_path, max_steps=4, save_every=2), build_tiny("sd1", seed=0))
    other = build_tiny("sd1", seed=1, name="tiny-other")  # the same width, other weights
    with pytest.raises(OnewordError) as refused:
        train(settings(tmp_path, max_steps=8, save_every=2, resume=True), other)
    assert "was trained on tiny-sd1" in str(refused.value) and "tiny-other" in str(refused.value)


def test_a_second_run_of_the_name_is_refused_while_the_first_runs(tmp_path):
    lock = tmp_path / "emb" / ".zqx.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from oneword.train.lock import RunLock
        with RunLock([{str(lock)!r}]):
            print("held", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OnewordError) as refused:
            train(settings(tmp_path, max_steps=2, save_every=0), build_tiny("sd1", seed=0))
        assert f"another training of this name is running there (process {holder.pid}" in str(refused.value)
        assert not (tmp_path / "emb" / "zqx.pt").exists() and not (tmp_path / "log").exists()
    finally:
        holder.kill()  # as a crash: the lock file stays behind
        holder.wait()
    assert lock.is_file()
    seen = []
    finished = train(settings(tmp_path, max_steps=2, save_every=0), build_tiny("sd1", seed=0), seen.append)
    notes = next(e for e in seen if isinstance(e, events.Started)).notes
    assert f"took over {lock} left by process {holder.pid}, which no longer runs" in notes
    assert finished.reason == "done" and not lock.exists()


def test_without_name_pt_a_new_run_is_refused_and_resume_writes_it_back(tmp_path):
    first = train(settings(tmp_path, max_steps=4, save_every=2), build_tiny("sd1", seed=0))
    kept = load_pickle(first.embedding_path)
    first.embedding_path.unlink()  # the run's state is still in its log folder
    with pytest.raises(OnewordError, match="holds a run of zqx saved at step 4: pass --resume to continue it"):
        train(settings(tmp_path, max_steps=4, save_every=2), build_tiny("sd1", seed=0))
    again = train(settings(tmp_path, max_steps=4, save_every=2, resume=True), build_tiny("sd1", seed=0))
    assert again.reason == "nothing"
    restored = load_pickle(first.embedding_path)
    assert torch.equal(restored["string_to_param"]["*"], kept["string_to_param"]["*"])
    assert (restored["name"], restored["step"]) == ("zqx", kept["step"])


def test_a_run_set_up_before_another_one_saved_is_refused_when_it_starts(tmp_path):
    from oneword.train.loop import fit, setup

    train(settings(tmp_path, max_steps=4, save_every=2), build_tiny("sd1", seed=0))
    late = setup(settings(tmp_path, max_steps=8, save_every=2, resume=True), build_tiny("sd1", seed=0))
    train(settings(tmp_path, max_steps=6, save_every=2, resume=True), build_tiny("sd1", seed=0))  # saves 6 meanwhile
    with pytest.raises(OnewordError, match="another training saved step 6 of zqx while this one was being set up"):
        fit(late)
    assert load_pickle(next((tmp_path / "log").glob("*/zqx/embeddings/zqx-6.pt.optim")))["step"] == 6  # untouched
