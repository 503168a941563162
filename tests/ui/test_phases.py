"""The phase line and the time left: what a training job says between its steps (validating, drawing the preview,
scoring, saving), and an ETA that counts those phases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from oneword.models.tiny import build_tiny
from oneword.ui import charts
from oneword.ui.eta import PhaseClock, phases_at, phases_due
from oneword.ui.jobs import TrainingJob
from tests.train.train_helpers import settings

NOWHERE = Path("/nonexistent")
"""Where the settings of a run that never starts point."""


class WatchedJob(TrainingJob):
    """A job whose status line is read after every event and every denoising step, from the training thread."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.lines: list[str] = []
        self.phases: list[tuple[int, str]] = []

    def _on_event(self, event) -> None:
        super()._on_event(event)
        if type(event).__name__ == "Phase":
            self.phases.append((event.step, event.name))
        self.lines.append(charts.status_line(self.state()))

    def _on_drawing(self, drawing) -> None:
        super()._on_drawing(drawing)
        self.lines.append(charts.status_line(self.state()))


def test_a_job_says_which_phase_runs_and_counts_the_scorers_samples(tmp_path):
    config = settings(tmp_path, max_steps=12, save_every=6, validate_every=4, preview_every=6, score="features",
                      score_samples=2, preview_steps=2)
    job = WatchedJob(config, "cpu", lambda name, **options: build_tiny("sd1", seed=0))
    job.start()
    job.join(300)
    assert job.state().status == "finished", job.state().message
    # the loop's phases are those the time left counts, in its order
    assert job.phases == [(k, name) for k in range(1, 13) for name in phases_at(config, k, 12)]
    phase_parts = {line.split(": ", 1)[1].split(" · step")[0] for line in job.lines
                   if line.startswith("**running**") and " · step" in line.split(": ", 1)[1]}
    assert {"validating step 4", "drawing the preview of step 6", "saving step 6", "validating step 6",
            "scoring step 6 (0 drawn)", "scoring step 6 (1 drawn)", "scoring step 6 (2 drawn)",
            "scoring step 12 (0/2 samples)", "scoring step 12 (1/2 samples)", "saving step 12"} <= phase_parts
    assert "drawing the preview of step 6 (sampling step 1/2)" in phase_parts
    assert any(line.startswith("**running** zqx: saving step 6 · step 6/12") for line in job.lines)
    scoring = next(line for line in job.lines if "scoring step 12 (1/2 samples)" in line)
    assert " · ETA " in scoring and scoring.startswith("**running** zqx: scoring step 12 (1/2 samples) · step 12/12")
    assert job.lines[-1].startswith("**finished** zqx:")


def test_the_time_left_adds_the_phases_still_due_at_their_measured_durations():
    config = settings(NOWHERE, max_steps=40, save_every=10, validate_every=0,
                      preview_every=0)
    clock = PhaseClock()
    clock.started(0.0, 0)
    clock.progressed(10.0, 10)  # 1 s a step
    clock.begin(10.0, "scoring", 10)
    clock.begin(40.0, "saving", 10)  # scoring took 30 s
    clock.end(42.0)  # saving 2 s
    clock.progressed(50.0, 20)  # steps 11-20 in 8 s: 18 s for 20 steps
    steps = 20 * 18 / 20
    # checkpoints at 20, 30 and the final 40 still to come: each scored (30 s) and saved (2 s)
    assert clock.seconds_left(config, 20, 40, 50.0) == steps + 3 * (30 + 2)
    clock.begin(50.0, "scoring", 20)
    assert clock.line() == "scoring step 20 (0 drawn)"
    assert clock.seconds_left(config, 20, 40, 60.0) == steps + 2 * 32 + (30 - 10) + 2  # the scoring going on
    clock.end(95.0)  # this one took 45 s: the mean is 37.5 s
    assert clock.seconds_left(config, 20, 40, 95.0) == steps + 2 * (37.5 + 2) + 2


def test_the_phases_due_are_those_of_each_step_summed():
    for changes in ({"save_every": 6, "validate_every": 4, "preview_every": 6},
                    {"save_every": 5, "validate_every": 3, "preview_every": 0, "stop": "auto"},
                    {"save_every": 0, "validate_every": 0, "preview_every": 7},
                    {"save_every": 25, "validate_every": 10, "preview_every": 25}):
        config = settings(NOWHERE, max_steps=60, **changes)
        for after in (0, 7, 30, 59, 60):
            walked = Counter(name for k in range(after + 1, 61) for name in phases_at(config, k, 60))
            assert phases_due(config, after, 60) == walked, (changes, after)


def test_a_job_before_its_first_step_shows_no_eta():
    from oneword.ui.jobs import JobState

    state = JobState(status="running", name="zqx", total_steps=10, config=settings(NOWHERE))
    assert state.eta_seconds is None
    assert charts.status_line(state) == "**running** zqx: step 0/10"


def test_the_status_is_drawn_again_each_second_while_a_job_runs(monkeypatch):
    import gradio as gr

    from oneword.ui.jobs import JobState
    from oneword.ui.tabs import train

    clock = iter([100.2, 100.7, 101.1])
    monkeypatch.setattr(train.time, "monotonic", lambda: next(clock))
    state = JobState(status="running", name="zqx", step=3, total_steps=10, version=7)
    first = train.redraw(state, {})
    assert first[1] == "**running** zqx: step 3/10"
    assert train.redraw(state, first[0]) == (gr.skip(),) * 7  # the same second: nothing new
    assert train.redraw(state, first[0])[1] == "**running** zqx: step 3/10"  # the next: the ETA counts down
