"""Checkpoints of a run: the trained file after N steps, and the optimizer state that lets `--resume` continue it.

The optimizer state file `NAME-STEP.pt.optim` beside a checkpoint holds, besides AdamW's moments, the digest of
the checkpoint's weights, its step, the base model and the run's history up to that step (and the weights at full
precision where the checkpoint rounds them): with its checkpoint it is everything `--resume` needs, and it is
written last, so a complete pair is always one of one step.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from oneword.errors import OnewordError
from oneword.ptfile import save_pt
from oneword.safeload import load_pickle
from oneword.train.trainable import Snapshot, Trainable

OPTIM_SUFFIX = ".optim"
"""A1111 keeps the optimizer state beside the trained file: `NAME.pt.optim` (`NAME.safetensors.optim`)."""
EXACT_WEIGHTS = "exact_weights"
"""The `.optim` key of the float32 weights of a kind whose files round them (a LoRA's fp16): `--resume` continues
from them, not from the rounded file."""


def optimizer_state_bytes(trainable: Trainable, snapshot: Snapshot, optimizer: torch.optim.Optimizer,
                          extra: dict[str, Any]) -> bytes:
    """The `.optim` file of a snapshot: the optimizer state tied to the snapshot's weights and step, and `extra`."""
    state = {
        "hash": trainable.state_hash(snapshot),
        "optimizer_name": type(optimizer).__name__,
        "optimizer_state_dict": optimizer.state_dict(),
        "step": snapshot.step,
        **extra,
    }
    exact = getattr(trainable, "exact_weights", None)  # a kind whose files keep its weights whole has none
    if exact is not None and (weights := exact(snapshot)):
        state[EXACT_WEIGHTS] = weights
    buffer = io.BytesIO()
    save_pt(state, buffer)
    return buffer.getvalue()


def optim_path(path: Path) -> Path:
    """`NAME.pt.optim` for `NAME.pt`."""
    return path.with_name(path.name + OPTIM_SUFFIX)


def read_optimizer_file(path: Path) -> dict | None:
    """The dict of an optimizer state file, or None when the file is missing, unreadable or holds none."""
    if not path.is_file():
        return None
    try:
        data = load_pickle(path)
    except OnewordError:
        return None
    return data if isinstance(data, dict) and "optimizer_state_dict" in data else None


def load_optimizer_state(state_hash: str, path: Path, optimizer_name: str,
                         sizes: list[int] | None = None) -> tuple[dict | None, str | None]:
    """The optimizer state saved beside `path` for weights of digest `state_hash`, or None with the reason (missing,
    another optimizer, other weights, other parameter groups)."""
    file = optim_path(path)
    if not file.is_file():
        return None, f"no optimizer state beside it ({file.name}); Adam's moments start from zero"
    data = load_pickle(file)  # a refused or unreadable file is a OnewordError naming it
    if not isinstance(data, dict) or "optimizer_state_dict" not in data:
        return None, f"{file.name} holds no optimizer state; Adam's moments start from zero"
    return matching_state(data, file, state_hash, optimizer_name, sizes)


def group_sizes(optimizer: torch.optim.Optimizer) -> list[int]:
    """The number of tensors in each of the optimizer's param groups."""
    return [len(group["params"]) for group in optimizer.param_groups]


def matching_state(data: dict, file: Path, state_hash: str, optimizer_name: str,
                   sizes: list[int] | None = None) -> tuple[dict | None, str | None]:
    """The optimizer state of `data` (read from `file`) if it is for this optimizer and these weights, and (given
    `sizes`, the tensors of each param group) for the same parameter groups."""
    if data.get("optimizer_name") != optimizer_name:
        return None, f"{file.name} is for {data.get('optimizer_name')}, not {optimizer_name}; starting its state afresh"
    if data.get("hash") != state_hash:
        return None, f"{file.name} was saved with other weights; Adam's moments start from zero"
    state = data["optimizer_state_dict"]
    saved = [len(group.get("params", ())) for group in state.get("param_groups", ())]
    if sizes is not None and saved != sizes:
        return None, (f"{file.name} is for {len(saved)} parameter groups ({saved} tensors), this run trains "
                      f"{len(sizes)} ({sizes}); Adam's moments start from zero")
    return state, None
