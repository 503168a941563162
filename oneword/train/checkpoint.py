"""Checkpoints of a run: the trained file after N steps, and the optimizer state that lets `--resume` continue it."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from oneword.files import atomic_write
from oneword.models.base import BaseModel
from oneword.ptfile import save_pt
from oneword.safeload import load_pickle
from oneword.train.trainable import Snapshot, Trainable

OPTIM_SUFFIX = ".optim"
"""A1111 keeps the optimizer state beside the trained file: `NAME.pt.optim` (`NAME.safetensors.optim`)."""


def save_with_optimizer(trainable: Trainable, snapshot: Snapshot, path: Path, model: BaseModel,
                        optimizer: torch.optim.Optimizer) -> None:
    """Write the snapshot and, beside it, the optimizer state (both atomically; the state first)."""
    state = {
        "hash": trainable.state_hash(snapshot),
        "optimizer_name": type(optimizer).__name__,
        "optimizer_state_dict": optimizer.state_dict(),
        "step": snapshot.step,
    }
    buffer = io.BytesIO()
    save_pt(state, buffer)
    atomic_write(optim_path(path), lambda f: f.write(buffer.getvalue()))
    trainable.save(snapshot, path, model)


def optim_path(path: Path) -> Path:
    """`NAME.pt.optim` for `NAME.pt`."""
    return path.with_name(path.name + OPTIM_SUFFIX)


def load_optimizer_state(state_hash: str, path: Path, optimizer_name: str) -> tuple[dict | None, str | None]:
    """The optimizer state saved beside `path` for weights of digest `state_hash`, or None with the reason (missing,
    another optimizer, other weights)."""
    file = optim_path(path)
    if not file.is_file():
        return None, f"no optimizer state beside it ({file.name}); Adam's moments start from zero"
    data = load_pickle(file)  # a refused or unreadable file is a OnewordError naming it
    if not isinstance(data, dict) or "optimizer_state_dict" not in data:
        return None, f"{file.name} holds no optimizer state; Adam's moments start from zero"
    if data.get("optimizer_name") != optimizer_name:
        return None, f"{file.name} is for {data.get('optimizer_name')}, not {optimizer_name}; starting its state afresh"
    if data.get("hash") != state_hash:
        return None, f"{file.name} was saved with other weights; Adam's moments start from zero"
    return data["optimizer_state_dict"], None
