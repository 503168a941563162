"""Where `--resume` continues a run: the latest complete checkpoint pair of its log folder.

A pair is `NAME-STEP.pt` and `NAME-STEP.pt.optim` whose digest and step match; the `.optim` is written last, so
the latest pair is the last state the run saved whole, whatever a kill interrupted after it. The run continues
from there (its last vectors and AdamW moments, not from NAME.pt, which is the best checkpoint), in the same log
folder, with its history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from oneword.errors import OnewordError
from oneword.models.base import BaseModel
from oneword.train.checkpoint import (
    OPTIM_SUFFIX,
    group_sizes,
    load_optimizer_state,
    matching_state,
    optim_path,
    read_optimizer_file,
)
from oneword.train.logfolder import LogFolder
from oneword.train.trainable import Snapshot, Trainable

NO_FILE_HASH = "0000000000"
"""The short hash of a model built in memory (no file to hash): such models are told apart by name."""


@dataclass
class SavedRun:
    """The last complete state of a run: its log folder, step, checkpoint and optimizer file's contents."""

    folder: LogFolder
    step: int
    snapshot: Snapshot
    data: dict
    """The `.optim` dict: optimizer_state_dict, hash, step, model_hash, model_name, history."""


def run_folders(log_dir: Path, name: str) -> list[Path]:
    """LOG_DIR/*/NAME folders, the newest day first."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        return []
    days = sorted((d for d in log_dir.iterdir() if d.is_dir()), key=lambda d: d.name, reverse=True)
    return [d / name for d in days if (d / name).is_dir()]


def saved_steps(folder: LogFolder) -> list[int]:
    """Steps that have an optimizer state file in the log folder, the latest first."""
    prefix, ending = f"{folder.name}-", f"{folder.suffix}{OPTIM_SUFFIX}"
    steps = []
    if folder.embeddings.is_dir():
        for path in folder.embeddings.iterdir():
            middle = path.name[len(prefix):-len(ending)] if path.name.startswith(prefix) else ""
            if path.name.endswith(ending) and middle.isdigit():
                steps.append(int(middle))
    return sorted(steps, reverse=True)


def latest_saved_run(log_dir: Path, name: str, kind: str, load: Callable[[Path], Snapshot],
                     state_hash: Callable[[Snapshot], str]) -> SavedRun | None:
    """The latest complete pair of the newest log folder of NAME that has one, or None."""
    for root in run_folders(log_dir, name):
        for suffix in (".pt", ".safetensors"):
            folder = LogFolder(root, name, suffix, kind)
            for step in saved_steps(folder):
                saved = _pair(folder, step, load, state_hash)
                if saved is not None:
                    return saved
    return None


def _pair(folder: LogFolder, step: int, load: Callable[[Path], Snapshot],
          state_hash: Callable[[Snapshot], str]) -> SavedRun | None:
    path = folder.checkpoint(step)
    data = read_optimizer_file(optim_path(path))
    if data is None or data.get("step") != step or not isinstance(data.get("history"), dict) or not path.is_file():
        return None
    try:
        snapshot = load(path)
    except OnewordError:
        return None
    if state_hash(snapshot) != data.get("hash"):
        return None
    return SavedRun(folder, step, snapshot, data)


def check_same_model(saved: SavedRun, model: BaseModel) -> None:
    """Refuse to resume a run on another base model than it was trained on (same width or not)."""
    old_hash, old_name = saved.data.get("model_hash"), saved.data.get("model_name")
    if NO_FILE_HASH not in (old_hash, model.short_hash) and old_hash is not None:
        same = old_hash == model.short_hash
    else:
        same = old_name is None or old_name == model.name
    if not same:
        raise OnewordError(
            f"--resume: {saved.folder.name} was trained on {old_name} [{old_hash}], not on the model loaded, "
            f"{model.name} [{model.short_hash}]: load {old_name} to continue it, or choose another name")


def resume_optimizer(optimizer: torch.optim.Optimizer, trainable: Trainable, step: int, saved: SavedRun | None,
                     path: Path) -> str | None:
    """Load the AdamW state `--resume` continues: the saved run's, else the one beside `path` (NAME.pt.optim), if it
    is for the trainable's weights at `step` and its parameter groups; else a note that the moments start afresh."""
    digest, kind = trainable.state_hash(trainable.snapshot(step)), type(optimizer).__name__
    sizes = group_sizes(optimizer)
    if saved is not None:
        state, why = matching_state(saved.data, optim_path(saved.folder.checkpoint(step)), digest, kind, sizes)
    else:
        state, why = load_optimizer_state(digest, path, kind, sizes)
    if state is None:
        return f"--resume: {why}"
    optimizer.load_state_dict(state)
    return None
