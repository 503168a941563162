"""What a run measured (training and validation losses, its checkpoints' records) and what it leaves behind from
them at the end: the best checkpoint as NAME.pt, `checkpoints.csv`, `loss.png` and `previews.png`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from oneword.files import atomic_write
from oneword.train.best import CheckpointRecord, best_record, write_summary
from oneword.train.logfolder import LogFolder
from oneword.train.pictures import plot_losses, preview_grid
from oneword.train.plateau import Plateau


@dataclass
class History:
    """Per-step training losses, validation losses and checkpoint records, and the plateau rule of `--stop auto`."""

    train: list[tuple[int, float]] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    records: list[CheckpointRecord] = field(default_factory=list)
    plateau: Plateau | None = None

    def measured(self, step: int) -> float | None:
        """The validation loss measured after `step` steps, if any."""
        return self.val[-1][1] if self.val and self.val[-1][0] == step else None


def leave_results(history: History, folder: LogFolder, signal: str, embedding_path: Path, last_step: int,
                  keep_last: bool) -> CheckpointRecord | None:
    """Pick the best checkpoint by `signal`, copy it over `embedding_path` (unless `keep_last`: an interrupted run
    keeps its last vectors there, with their optimizer state, for --resume), write the summary and the pictures."""
    best = best_record(history.records, signal)
    if best is not None and best.step != last_step and not keep_last:
        data = best.path.read_bytes()
        atomic_write(embedding_path, lambda f: f.write(data))
    chosen = best.step if best else None
    if history.records:
        write_summary(folder.summary, history.records, best)
    plot_losses(folder.loss_plot, history.train, history.val, history.records, chosen)
    previews = [(r.step, folder.preview(r.step)) for r in history.records if folder.preview(r.step).is_file()]
    if previews:
        preview_grid(folder.preview_grid, previews, chosen)
    return best
