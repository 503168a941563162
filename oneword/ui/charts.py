"""A job's curves as the tables Gradio's line plots draw, and its status line."""

from __future__ import annotations

import pandas as pd

from oneword.train.best import summary_table
from oneword.ui.jobs import JobState


def _curve(rows: list[tuple[int, float, str]], value: str) -> pd.DataFrame:
    """A line plot's table, columns step, `value`, series, typed even when empty: the page fixes a plot's axes from
    the first table it receives (later ones only replace the data), and an empty untyped table would make the
    step axis categories for good, on which a curve is drawn as separate points."""
    frame = pd.DataFrame(rows, columns=["step", value, "series"])
    return frame.astype({"step": "int64", value: "float64", "series": "string"})


def loss_frame(state: JobState) -> pd.DataFrame:
    """Training loss, raw and smoothed: columns step, loss, series."""
    rows = [(step, raw, "raw") for step, raw, _ in state.train_loss]
    rows += [(step, smooth, "smoothed") for step, _, smooth in state.train_loss]
    return _curve(rows, "loss")


def validation_frame(state: JobState) -> pd.DataFrame:
    """Validation loss after each measurement: columns step, loss, series."""
    return _curve([(step, value, "val_loss") for step, value in state.val_loss], "loss")


def scores_frame(state: JobState) -> pd.DataFrame:
    """Each checkpoint's scores: columns step, score, series."""
    return _curve([(step, score, key) for step, key, score in state.scores], "score")


def summary_frame(state: JobState) -> pd.DataFrame:
    """The checkpoints' table the command line prints at the end (step, val_loss, scores, best)."""
    best = next((r for r in state.records if r.step == state.best_step), None)
    header, rows = summary_table(state.records, best)
    return pd.DataFrame(rows, columns=header)


def status_line(state: JobState) -> str:
    """One line: what the job is doing, step, speed, time left, and how it ended."""
    if state.status == "idle":
        return "no training has run on this server yet"
    where = f" — log folder `{state.log_folder}`" if state.log_folder else ""
    if state.status == "failed":
        return f"**failed** {state.name}: {state.message}"
    if state.status == "loading":
        return f"**loading** {state.name}: the model and the data"
    progress = f"step {state.step}/{state.total_steps}"
    if state.phase_line:  # what happens between the steps now
        progress = f"{state.phase_line} · {progress}"
    if state.status in ("running", "stopping"):
        eta = state.eta_seconds
        left = f" · ETA {_clock(eta)}" if eta is not None else ""
        rate = f" · {state.steps_per_second:.2f} it/s" if state.steps_per_second else ""
        return f"**{state.status}** {state.name}: {progress}{rate}{left}{_rates(state)}{where}"
    best = f" · best checkpoint: step {state.best_step} by {state.signal}" if state.best_step is not None else ""
    rate = f" · {state.steps_per_second:.2f} it/s" if state.steps_per_second else ""
    return f"**finished** {state.name}: {state.message}{rate}{best}{where}"


def _rates(state: JobState) -> str:
    """The learning rate, or with several parameter groups each group's by name."""
    if len(state.learn_rates) > 1:
        return " · lr " + ", ".join(f"{name} {rate:g}" for name, rate in state.learn_rates.items())
    return f" · lr {state.learn_rate:g}" if state.learn_rate else ""


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
