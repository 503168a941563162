"""benchmarks/first_step.py's split of the seconds before the first step: each moment counts once, for the
innermost stretch covering it, and what no stretch covers is `other`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "first_step.py"


def _script():
    spec = importlib.util.spec_from_file_location("first_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_moment_counts_once_for_the_innermost_stretch():
    events = [("interpreter start", 0.0, 1.0), ("model load", 2.0, 6.0), ("imports", 2.5, 4.0),
              ("latent caching", 7.0, 8.0), ("optimizer step", 9.0, 9.5), ("first step", 9.5, 9.5)]
    total, seconds = _script().exclusive(events)
    assert total == 9.5
    assert seconds == pytest.approx({"interpreter start": 1.0, "model load": 2.5, "imports": 1.5,
                                     "latent caching": 1.0, "optimizer step": 0.5, "other": 3.0})
