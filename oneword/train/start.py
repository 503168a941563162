"""What a run starts from: the file of its kind it continues (or creates), checked against the model; with
`--resume`, the last complete state of its log folder when there is one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from oneword import kinds
from oneword.errors import OnewordError, gather
from oneword.models.base import BaseModel
from oneword.train.checkpoint import EXACT_WEIGHTS, optim_path, read_optimizer_file
from oneword.train.config import TrainConfig
from oneword.train.logfolder import LogFolder
from oneword.train.resume import SavedRun, check_same_model, latest_saved_run
from oneword.train.trainable import Snapshot, Trainable


def existing_file(folder: Path, name: str, suffix: str = ".pt") -> Path:
    """An existing `NAME.pt` or `NAME.safetensors` in `folder`, else the new file's path."""
    for existing in (".pt", ".safetensors"):
        path = Path(folder) / f"{name}{existing}"
        if path.is_file():
            return path
    return Path(folder) / f"{name}{suffix}"


def _starting_snapshot(config: TrainConfig, model: BaseModel, name: str) -> tuple[Any, Path]:
    kind = kinds.get(config.kind)
    path = existing_file(kind.trained_dir(config)[1], name, kind.suffix(model))
    if not path.is_file():
        if config.resume:
            raise OnewordError(f"--resume: there is no {kind.name} {path} to continue")
        return kind.create(config, model, name), path
    snapshot = kind.read(path, model)
    snapshot.name = name
    refuse_ignored_settings(kind, config, snapshot, path)
    if config.resume:  # NAME.safetensors.optim keeps the weights a rounded file lost
        data = read_optimizer_file(optim_path(path))
        if data is not None and data.get("step") == snapshot.step and data.get("hash") == kind.state_hash(snapshot):
            snapshot = exact_snapshot(kind, snapshot, data)
    if (snapshot.step or 0) > 0 and not config.resume:
        raise OnewordError(
            f"{path} has been trained for {snapshot.step} steps already: pass --resume to continue it, "
            "or choose another name"
        )
    return snapshot, path


def exact_snapshot(kind: kinds.Kind, snapshot: Any, data: dict) -> Any:
    """The snapshot with the full-precision weights its optimizer state `data` keeps, for a kind whose files round
    them (`Kind.with_exact_weights`); else the snapshot as read."""
    weights = data.get(EXACT_WEIGHTS)
    restore = getattr(kind, "with_exact_weights", None)
    return restore(snapshot, weights) if weights and restore is not None else snapshot


def refuse_ignored_settings(kind: kinds.Kind, config: TrainConfig, snapshot: Any, path: Path) -> None:
    """Refuse settings that a run continuing the file `path` would not use (`Kind.continuing_problems`: a LoRA's
    --rank other than the file's)."""
    check = getattr(kind, "continuing_problems", None)
    if check is not None:
        gather(check(config, snapshot, path))


@dataclass
class Start:
    """What a run trains, the file it leaves (NAME.pt), the step it starts from, and the saved state it continues."""

    trainable: Trainable
    path: Path
    step: int
    saved: SavedRun | None = None


def starting_point(config: TrainConfig, model: BaseModel, name: str, device: torch.device) -> Start:
    """What the run trains, the file it continues and leaves, and the step it starts from."""
    kind = kinds.get(config.kind)
    path = existing_file(kind.trained_dir(config)[1], name, kind.suffix(model))
    saved = _saved_run(config, model, name) if config.resume else None
    if saved is not None:
        check_same_model(saved, model)
        refuse_ignored_settings(kind, config, saved.snapshot, saved.folder.checkpoint(saved.step))
        snapshot, suffix = exact_snapshot(kind, saved.snapshot, saved.data), saved.folder.suffix
        snapshot.name = name
        path = path if path.suffix == suffix else path.with_suffix(suffix)
        return Start(kind.trainable(snapshot, config, device), path, saved.step, saved)
    snapshot, path = _starting_snapshot(config, model, name)
    start = Start(kind.trainable(snapshot, config, device), path, snapshot.step or 0)
    if not config.resume:
        _refuse_to_overwrite_a_run(config, model, name)
    refuse_another_kinds_folder(config, name)
    return start


def refuse_another_kinds_folder(config: TrainConfig, name: str) -> None:
    """A run that starts a log folder today must not write into the folder of today's run of NAME of another kind:
    both would write the same checkpoints.csv, loss.png, previews.png and images/NAME-STEP.png."""
    folder = LogFolder.for_run(Path(config.log_dir), name, kind=config.kind)
    others = sorted(folder.run_kinds() - {config.kind})
    if others:
        raise OnewordError(
            f"--log-dir {config.log_dir}: {folder.root} holds today's {' and '.join(others)} run of {name}, whose "
            f"checkpoints.csv, loss.png and previews a {config.kind} run would replace: give this run another "
            f"--log-dir (e.g. {Path(config.log_dir) / config.kind}) or another NAME")


def _saved_run(config: TrainConfig, model: BaseModel, name: str) -> SavedRun | None:
    kind = kinds.get(config.kind)
    return latest_saved_run(config.log_dir, name, kind.name, lambda path: kind.read(path, model), kind.state_hash)


def _refuse_to_overwrite_a_run(config: TrainConfig, model: BaseModel, name: str) -> None:
    """A new run of NAME must not write over today's log folder of an earlier run that `--resume` continues."""
    import datetime as dt

    saved = _saved_run(config, model, name)
    if saved is not None and saved.folder.root.parent.name == dt.date.today().isoformat():
        raise OnewordError(f"{saved.folder.root} holds a run of {name} saved at step {saved.step}: pass --resume to "
                           "continue it, or move that folder away to start again")


def read_snapshot(path: Path, kind: str, model: BaseModel) -> Snapshot:
    """A run's saved file (a checkpoint or NAME.pt) of the registered kind `kind`, checked against `model`."""
    return kinds.get(kind).read(path, model)
