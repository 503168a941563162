"""Which checkpoint is best: the validation loss and the scores of every saved checkpoint, the signal that ranks
them, and the summary a run ends with (`checkpoints.csv` in the log folder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from oneword.files import atomic_write_text

VAL_LOSS = "val_loss"


@dataclass
class CheckpointRecord:
    """One saved checkpoint and what was measured on its vectors."""

    step: int
    path: Path
    val_loss: float | None
    scores: dict[str, float] = field(default_factory=dict)

    def value(self, signal: str) -> float | None:
        """The measurement called `signal` (`val_loss` or a score's name), None when it was not measured."""
        return self.val_loss if signal == VAL_LOSS else self.scores.get(signal)


def lower_is_better(signal: str) -> bool:
    """A loss falls as the vectors improve; every score rises."""
    return signal == VAL_LOSS


TIE = 0.002
"""Measurements within this share (0.2%) of the best one are a tie. On a plateau the validation loss moves about
that much from one checkpoint to the next (0.11-0.27% on the toy world's runs) while the vectors barely change, so
a smaller difference says nothing about which checkpoint is better."""


def best_record(records: list[CheckpointRecord], signal: str) -> CheckpointRecord | None:
    """The checkpoint with the best `signal`, the latest among ties (it trained longest, and the measurement cannot
    tell them apart: see TIE); the last checkpoint when none was measured."""
    measured = [r for r in records if r.value(signal) is not None]
    if not measured:
        return records[-1] if records else None
    sign = 1.0 if lower_is_better(signal) else -1.0
    best = min(sign * r.value(signal) for r in measured)
    ties = [r for r in measured if sign * r.value(signal) <= best + TIE * abs(best)]
    return max(ties, key=lambda r: r.step)


def score_names(records: list[CheckpointRecord]) -> list[str]:
    """Every score name that appears, in first-seen order."""
    names: list[str] = []
    for record in records:
        names.extend(n for n in record.scores if n not in names)
    return names


def summary_table(records: list[CheckpointRecord], best: CheckpointRecord | None) -> tuple[list[str], list[list[str]]]:
    """Header and rows (step, val_loss, scores..., best) as text: what the CLI prints and the CSV holds."""
    names = score_names(records)
    header = ["step", VAL_LOSS, *names, "best"]
    rows = []
    for r in records:
        cells = [str(r.step), "" if r.val_loss is None else f"{r.val_loss:.5f}"]
        cells += ["" if r.scores.get(n) is None else f"{r.scores[n]:.4f}" for n in names]
        cells.append("*" if best is not None and r.step == best.step else "")
        rows.append(cells)
    return header, rows


def write_summary(path: Path, records: list[CheckpointRecord], best: CheckpointRecord | None) -> Path:
    """`checkpoints.csv`: one row per saved checkpoint, the best marked with `*`."""
    header, rows = summary_table(records, best)
    atomic_write_text(path, "\n".join(",".join(cells) for cells in [header, *rows]) + "\n")
    return path


def summary_best_step(path: Path) -> int | None:
    """The step `checkpoints.csv` marks best (`*` in its `best` column), None without the file or a mark."""
    if not path.is_file():
        return None
    rows = [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()]
    if not rows or rows[0][:1] != ["step"] or rows[0][-1] != "best":
        return None
    marked = [row[0] for row in rows[1:] if len(row) == len(rows[0]) and row[-1] == "*" and row[0].isdigit()]
    return int(marked[0]) if marked else None
