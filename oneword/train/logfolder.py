"""The log folder of a run, laid out as A1111 users know it, and its loss CSV."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oneword import kinds
from oneword.files import atomic_write_text

CSV_COLUMNS = ("step", "epoch", "epoch_step", "loss", "learn_rate")
"""A1111's `textual_inversion_loss.csv` header; extra columns may follow."""


def rate_columns(groups: tuple[str, ...]) -> tuple[str, ...]:
    """The columns after `learn_rate` (the first parameter group's rate): `learn_rate_NAME` for every further group
    (none with one group: A1111's header)."""
    return tuple(f"learn_rate_{name}" for name in groups[1:])


@dataclass
class LogFolder:
    """LOG_DIR/YYYY-MM-DD/NAME with the kind's checkpoints folder, images/, the kind's CSV and the settings JSON, as
    A1111 writes them: embeddings/, image_embeddings/ and `textual_inversion_loss.csv` for an embedding,
    hypernetworks/ and `hypernetwork_loss.csv` for a hypernetwork (the names come from the kind, oneword.kinds)."""

    root: Path
    name: str
    suffix: str = ".pt"
    """`.pt` (A1111's dict); `.safetensors` for SDXL, whose A1111 `.pt` has no room for the step."""
    kind: str = "embedding"
    """The registered kind's name."""

    @classmethod
    def for_run(cls, log_dir: Path, name: str, suffix: str = ".pt", today: dt.date | None = None,
                kind: str = "embedding") -> LogFolder:
        """The folder of a run started today (not created yet)."""
        day = (today or dt.date.today()).isoformat()
        return cls(Path(log_dir) / day / name, name, suffix, kind)

    @property
    def hidden_in_previews(self) -> bool:
        """Whether each preview is also written with the checkpoint hidden inside (image_embeddings/): embeddings."""
        return kinds.get(self.kind).hidden_in_previews

    def make(self) -> None:
        """Create the folder and its subfolders."""
        subs = (self.embeddings, self.images, self.image_embeddings) if self.hidden_in_previews else (
            self.embeddings, self.images)
        for sub in subs:
            sub.mkdir(parents=True, exist_ok=True)

    @property
    def embeddings(self) -> Path:
        """Where the checkpoints go: the kind's folder, embeddings/ (hypernetworks/ for a hypernetwork)."""
        return self.root / kinds.get(self.kind).folder

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def image_embeddings(self) -> Path:
        return self.root / "image_embeddings"

    @property
    def csv(self) -> Path:
        """The kind's loss CSV: `textual_inversion_loss.csv` (`hypernetwork_loss.csv` for a hypernetwork)."""
        return self.root / kinds.get(self.kind).csv_name

    @property
    def summary(self) -> Path:
        """One row per saved checkpoint: step, validation loss, scores, the best marked."""
        return self.root / "checkpoints.csv"

    @property
    def loss_plot(self) -> Path:
        return self.root / "loss.png"

    @property
    def preview_grid(self) -> Path:
        return self.root / "previews.png"

    def checkpoint(self, step: int) -> Path:
        """`embeddings/NAME-STEP.pt` (`hypernetworks/...`): the weights after STEP optimizer steps."""
        return self.embeddings / f"{self.name}-{step}{self.suffix}"

    def preview(self, step: int) -> Path:
        return self.images / f"{self.name}-{step}.png"

    def previews(self, until: int | None = None) -> list[tuple[int, Path]]:
        """The previews in images/ (`NAME-STEP.png`) as (step, file) by step, those up to step `until` if given."""
        prefix = f"{self.name}-"
        found = [(int(p.stem[len(prefix):]), p) for p in self.images.glob(f"{prefix}*.png")
                 if p.stem[len(prefix):].isdigit()] if self.images.is_dir() else []
        return sorted((step, p) for step, p in found if until is None or step <= until)

    def preview_embedding(self, step: int) -> Path:
        return self.image_embeddings / f"{self.name}-{step}.png"

    def run_kinds(self) -> set[str]:
        """The kinds of the runs that wrote here, as their settings JSON files name them (none in a new folder)."""
        found = set()
        for path in self.root.glob("settings-*.json"):
            try:
                settings = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            kind = settings.get("kind") if isinstance(settings, dict) else None
            if isinstance(kind, str):
                found.add(kind)
        return found

    def write_settings(self, settings: dict[str, Any], now: dt.datetime | None = None) -> Path:
        """`settings-YYYY-MM-DD-HH-MM-SS.json` with every training parameter."""
        stamp = (now or dt.datetime.now()).strftime("%Y-%m-%d-%H-%M-%S")
        path = self.root / f"settings-{stamp}.json"
        atomic_write_text(path, json.dumps(settings, indent=2, default=str) + "\n")
        return path


class LossCsv:
    """Rows of `step,epoch,epoch_step,loss,learn_rate[,extra...]`; a resumed run appends to the same file. A run
    whose trainable has several parameter groups writes the first group's rate as `learn_rate` and the others' as
    `learn_rate_NAME` after it.

    Each write replaces the whole file atomically, so an interrupted run never leaves a torn row.
    """

    def __init__(self, path: Path, extra_columns: tuple[str, ...] = ()) -> None:
        self.path = path
        self.columns = CSV_COLUMNS + tuple(extra_columns)
        header = ",".join(self.columns)
        self.lines = [header]
        if path.is_file():
            old = path.read_text(encoding="utf-8").splitlines()
            if old and old[0] == header:
                self.lines = old

    def keep_until(self, step: int) -> None:
        """Drop rows past `step` (a run resumed from an earlier checkpoint rewrites them)."""
        self.lines = [self.lines[0], *(r for r in self.lines[1:] if int(r.split(",")[0]) <= step)]

    def add(self, step: int, epoch: int, epoch_step: int, loss: float, learn_rate: float, *extra: object) -> None:
        """Append one row (loss with 7 decimals, as A1111 prints it) and write the file."""
        cells = [str(step), str(epoch), str(epoch_step), f"{loss:.7f}", f"{learn_rate}", *(str(e) for e in extra)]
        self.lines.append(",".join(cells))
        atomic_write_text(self.path, "\n".join(self.lines) + "\n")
