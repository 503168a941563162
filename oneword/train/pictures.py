"""The pictures a run ends with: `loss.png` (training loss, its smoothed curve, validation loss and scores against
steps, the chosen step marked) and `previews.png` (the checkpoints' previews, the chosen one outlined)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from oneword.files import atomic_write
from oneword.train.best import CheckpointRecord, score_names

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


def loss_axis_top(train: list[float], val: list[float]) -> float:
    """Top of the loss axis: the rare high-timestep spikes of the training loss (above its 95th percentile) would
    squash the curves that matter, so they run off the top."""
    values = sorted(train)
    top = values[int(0.95 * (len(values) - 1))] if values else 0.0
    return 1.1 * max([top, *val, 1e-6])


def plot_losses(path: Path, train_losses: list[tuple[int, float]], val_losses: list[tuple[int, float]],
                records: list[CheckpointRecord], chosen_step: int | None) -> Path:
    """Write `loss.png`: losses on the left axis, scores (if any) on the right one, the chosen step as a line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5), dpi=100)
    ax = figure.add_subplot()
    if train_losses:
        steps, values = zip(*train_losses)
        ax.plot(steps, values, color="tab:blue", alpha=0.25, linewidth=0.6, label="training loss")
        ax.plot(steps, smoothed(list(values)), color="tab:blue", linewidth=1.5, label="training loss, smoothed")
    if val_losses:
        steps, values = zip(*val_losses)
        ax.plot(steps, values, color="tab:orange", marker=".", linewidth=1.5, label="validation loss (fixed batch)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_ylim(0, loss_axis_top([v for _, v in train_losses], [v for _, v in val_losses]))
    handles, labels = ax.get_legend_handles_labels()
    names = score_names(records)
    if names:
        right = ax.twinx()
        for name, colour in zip(names, ("tab:green", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")):
            points = [(r.step, r.scores[name]) for r in records if name in r.scores]
            right.plot(*zip(*points), color=colour, marker="o", markersize=3, label=name)
        right.set_ylabel("score (higher is better)")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if chosen_step is not None:
        handles.append(ax.axvline(chosen_step, color="tab:red", linestyle="--", linewidth=1))
        labels.append(f"chosen: step {chosen_step}")
    ax.legend(handles, labels, loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
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
