"""The stretches before the first optimizer step are timed for whoever records them (benchmarks/first_step.py), each
once per run, and nothing is kept or called when no one does."""

from __future__ import annotations

from train_helpers import settings

from oneword import timing
from oneword.models.load import load_base
from oneword.train.loop import train


def test_a_run_reports_its_stretches_to_a_recording(tmp_path):
    seen: list[str] = []
    with timing.recording(lambda name, start, end: seen.append(name) if end >= start else None):
        model = load_base("tiny-sd1")
        train(settings(tmp_path, max_steps=2, save_every=0, validate_every=1, score="none"), model)
    assert seen.count("model load") == 1
    assert seen.count("latent caching") == 1
    assert seen.count("validation set-up") == 1
    assert seen.count("optimizer step") == 2
    assert seen.index("latent caching") < seen.index("validation set-up") < seen.index("optimizer step")


def test_without_a_recording_nothing_is_called(monkeypatch):
    monkeypatch.setattr(timing.time, "time", lambda: (_ for _ in ()).throw(AssertionError("the clock was read")))
    with timing.timed("model load"):
        done = True
    assert done
