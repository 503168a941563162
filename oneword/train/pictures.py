"""The pictures a run ends with: `loss.png` (training loss, its smoothed curve, validation loss and scores against
steps, the chosen step marked) and `previews.png` (the checkpoints' previews, the chosen one outlined)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from oneword.files import atomic_write
from oneword.train.best import CheckpointRecord, score_names

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SMOOTHING = 0.98
"""Weight of the previous value in the training loss's exponential moving average (about 50 steps)."""
OUTLINE = (230, 40, 40)


def smoothed(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average, bias-corrected so that the first values are not pulled towards zero."""
    out, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**i))
    return out


def training_axis_top(smooth: list[float]) -> float:
    """Top of the training panel: the smoothed curve fills it (its 98th percentile, since its first steps follow
    the first raw values), and the rare high-timestep spikes of the raw loss run off the top."""
    values = sorted(smooth)
    return 1.25 * max([values[int(0.98 * (len(values) - 1))] if values else 0.0, 1e-6])


def validation_axis_limits(values: list[float]) -> tuple[float, float]:
    """The validation panel's own range: its lowest to highest value with a margin, so that the small changes that
    choose a checkpoint (0.2% decides a tie) show instead of a flat line at the bottom of the training range."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    margin = max(0.1 * (high - low), 0.001 * abs(high), 1e-9)
    return low - margin, high + margin


def loss_figure(train_losses: list[tuple[int, float]], val_losses: list[tuple[int, float]],
                records: list[CheckpointRecord], chosen_step: int | None) -> Figure:
    """The figure of `loss.png`: training loss (raw and smoothed) in the top panel, the validation loss in its own
    panel below with the scores (if any) on its right axis, the chosen step as a line in both; the legends stand
    to the right of the panels, off the lines."""
    from matplotlib.figure import Figure  # imported here: most commands never draw

    figure = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    if train_losses:
        steps, values = zip(*train_losses)
        smooth = smoothed(list(values))
        top.plot(steps, values, color="tab:blue", alpha=0.25, linewidth=0.6, label="training loss")
        top.plot(steps, smooth, color="tab:blue", linewidth=1.5, label="training loss, smoothed")
        top.set_ylim(0, training_axis_top(smooth))
    top.set_ylabel("training loss")
    if val_losses:
        steps, values = zip(*val_losses)
        bottom.plot(steps, values, color="tab:orange", marker=".", linewidth=1.5, label="validation loss (fixed batch)")
    bottom.set_ylim(*validation_axis_limits([v for _, v in val_losses]))
    bottom.set_ylabel("validation loss")
    bottom.set_xlabel("step")
    handles, labels = bottom.get_legend_handles_labels()
    names = score_names(records)
    if names:
        right = bottom.twinx()
        for name, colour in zip(names, ("tab:green", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")):
            points = [(r.step, r.scores[name]) for r in records if name in r.scores]
            right.plot(*zip(*points), color=colour, marker="o", markersize=3, label=name)
        right.set_ylabel("score (higher is better)")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if chosen_step is not None:
        top.axvline(chosen_step, color="tab:red", linestyle="--", linewidth=1)
        handles.append(bottom.axvline(chosen_step, color="tab:red", linestyle="--", linewidth=1))
        labels.append(f"chosen: step {chosen_step}")
    for where, (panel_handles, panel_labels) in (("upper", top.get_legend_handles_labels()), ("lower", (handles, labels))):
        if panel_handles:
            figure.legend(panel_handles, panel_labels, loc=f"outside right {where}", fontsize="small")
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    return figure


def plot_losses(path: Path, train_losses: list[tuple[int, float]], val_losses: list[tuple[int, float]],
                records: list[CheckpointRecord], chosen_step: int | None) -> Path:
    """Write `loss.png` (see `loss_figure`)."""
    buffer = io.BytesIO()
    loss_figure(train_losses, val_losses, records, chosen_step).savefig(buffer, format="png")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


def preview_grid(path: Path, previews: list[tuple[int, Path]], chosen_step: int | None, columns: int = 8,
                 cell: int = 192) -> Path:
    """Write a grid of the previews (step, file), labelled by step, the chosen step's outlined in red."""
    label_height, border = 16, 4
    rows = -(-len(previews) // columns)
    width = min(columns, len(previews))
    grid = Image.new("RGB", (width * cell, rows * (cell + label_height)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for i, (step, file) in enumerate(previews):
        x, y = (i % columns) * cell, (i // columns) * (cell + label_height)
        with Image.open(file) as image:
            thumb = image.convert("RGB")
        thumb.thumbnail((cell - 2 * border, cell - 2 * border))
        grid.paste(thumb, (x + border, y + label_height + border))
        chosen = step == chosen_step
        draw.text((x + 2, y + 2), f"step {step}" + (" (chosen)" if chosen else ""), fill="black", font=font)
        if chosen:
            draw.rectangle((x, y + label_height, x + cell - 1, y + label_height + cell - 1), outline=OUTLINE,
                           width=border)
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path
