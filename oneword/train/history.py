"""What a run measured (training and validation losses, its checkpoints' records) and what it leaves behind from
them: `checkpoints.csv`, `loss.png` and `previews.png`. The history is saved with each checkpoint's optimizer
state, so that a resumed run continues one history (the whole run, across resumes)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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
    row_losses: list[float] = field(default_factory=list)
    """Training losses of the steps since the loss CSV's last row (the next row is their mean)."""

    def measured(self, step: int) -> float | None:
        """The validation loss measured after `step` steps, if any."""
        return self.val[-1][1] if self.val and self.val[-1][0] == step else None

    def progress(self, every: int) -> list[tuple[int, float]]:
        """The training losses as the progress events give them: the mean of each `every` steps, by its last step."""
        groups: dict[int, list[tuple[int, float]]] = {}
        for step, value in self.train:
            groups.setdefault((step - 1) // every, []).append((step, value))
        return [(g[-1][0], sum(v for _, v in g) / len(g)) for g in groups.values()]

    def to_state(self) -> dict[str, Any]:
        """The history as plain lists and numbers (what an optimizer state file can hold)."""
        return {  # Python numbers only (a numpy scalar would need a global to unpickle)
            "train": [[int(s), float(v)] for s, v in self.train],
            "val": [[int(s), float(v)] for s, v in self.val],
            "records": [{"step": int(r.step), "val_loss": None if r.val_loss is None else float(r.val_loss),
                         "scores": {str(k): float(v) for k, v in r.scores.items()}} for r in self.records],
            "plateau": None if self.plateau is None else _plain(dataclasses.asdict(self.plateau)),
            "row_losses": [float(v) for v in self.row_losses],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], folder: LogFolder, plateau: Plateau | None) -> History:
        """The history saved by `to_state`; `plateau` (this run's rule) continues the saved series."""
        if plateau is not None and isinstance(state.get("plateau"), dict):
            saved = state["plateau"]
            plateau = dataclasses.replace(plateau, smoothed=list(saved.get("smoothed", [])), best=saved.get("best"),
                                          best_index=saved.get("best_index"), since_best=saved.get("since_best", 0))
        records = [CheckpointRecord(int(r["step"]), folder.checkpoint(int(r["step"])), r.get("val_loss"),
                                    dict(r.get("scores") or {})) for r in state.get("records", [])]
        return cls(train=[(int(s), float(v)) for s, v in state.get("train", [])],
                   val=[(int(s), float(v)) for s, v in state.get("val", [])], records=records, plateau=plateau,
                   row_losses=[float(v) for v in state.get("row_losses", [])])


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    """A plateau's fields as Python numbers."""
    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [float(v) for v in value]
        return value if value is None or isinstance(value, (bool, int, str)) else float(value)

    return {key: plain(value) for key, value in fields.items()}


def leave_results(history: History, folder: LogFolder, signal: str) -> CheckpointRecord | None:
    """The best checkpoint by `signal`; writes the summary and the pictures of the whole run."""
    best = best_record(history.records, signal)
    chosen = best.step if best else None
    if history.records:
        write_summary(folder.summary, history.records, best)
    plot_losses(folder.loss_plot, history.train, history.val, history.records, chosen)
    previews = [(r.step, folder.preview(r.step)) for r in history.records if folder.preview(r.step).is_file()]
    if previews:
        preview_grid(folder.preview_grid, previews, chosen)
    return best
