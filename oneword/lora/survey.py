"""What each file of a LoRA folder is for a model: its kind, rank and the layers that fit, or why it is left out
(what `oneword lora list` shows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oneword.lora.fit import fit, lookup
from oneword.lora.library import LoraLibrary
from oneword.lora.read import lora_kind
from oneword.models.base import BaseModel


@dataclass(frozen=True)
class Row:
    """One file of the folder."""

    path: Path
    name: str = ""
    kind: str = ""
    rank: str = ""
    """The layers' rank, or `MIN-MAX` when they differ; empty for LoKr with whole factors."""
    layers: str = ""
    """`FIT/ALL`: the layers that apply to the model, of those the file has."""
    problem: str = ""
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """`ok`, `ok; NOTE...` (layers left out), or `skipped: WHY`."""
        if self.problem:
            return f"skipped: {self.problem}"
        return "; ".join(["ok", *self.notes])

    def cells(self, folder: Path) -> tuple[str, ...]:
        """The table's cells: file (relative to `folder`), name, kind, rank, layers, status."""
        relative = self.path.relative_to(folder).as_posix() if self.path.is_relative_to(folder) else str(self.path)
        return relative, self.name, self.kind, self.rank, self.layers, self.status


def _rank(layers: list[object]) -> str:
    ranks = sorted({r for r in (getattr(layer, "rank", None) for layer in layers) if r is not None})
    if not ranks:
        return ""
    return str(ranks[0]) if len(ranks) == 1 else f"{ranks[0]}-{ranks[-1]}"


def survey(folder: Path, model: BaseModel) -> list[Row]:
    """Every LoRA file under `folder`, read and fitted to `model`, in path order."""
    library = LoraLibrary.scan(folder)
    table = lookup(model)
    rows = []
    for entry in library.entries():
        if entry.lora is None:
            problem = entry.problem.removeprefix(f"{entry.path}: ")
            rows.append(Row(entry.path, name=entry.path.stem, problem=problem))
            continue
        fitted = fit(entry.lora, model, table)
        notes = tuple(note.removeprefix(f"lora {entry.lora.name}: ") for note in fitted.notes(entry.lora.name))
        rows.append(Row(entry.path, entry.lora.name, lora_kind(entry.lora, entry.layout),
                        _rank(list(entry.lora.layers.values())), f"{len(fitted.layers)}/{len(entry.lora.layers)}",
                        notes=notes))
    return rows
