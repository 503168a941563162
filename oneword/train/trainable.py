"""What a run trains, behind one small interface, whatever its kind (oneword/kinds/ declares each kind's).

The loop sees only this interface: the parameters in named groups (each with its learning-rate schedule and
weight decay), how a batch is conditioned, what is applied to the model for
the run, a snapshot, and how a snapshot is saved. An embedding acts through the prompts that contain its name; a
hypernetwork acts on every UNet call while it is applied (the whole run: training, validation, previews, scores).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from pathlib import Path
from typing import Protocol

import torch

from oneword.conditioning.encode import Conditioning
from oneword.embeddings.embedding import Embedding
from oneword.models.base import BaseModel
from oneword.snapshot import Snapshot
from oneword.train.groups import ParamGroup

__all__ = ["Snapshot", "Trainable", "stamped", "tensors_hash"]


class Trainable(Protocol):
    """The trained part of a run: its parameters, how prompts are conditioned with it, and a snapshot to save."""

    name: str
    kind: str
    """The registered kind's name (oneword.kinds): it names the log folder's files."""

    def parameters(self) -> list[torch.Tensor]:
        """The tensors the optimizer updates (float32 leaves): every group's, in group order."""
        ...

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        """The parameters in named groups, each with its schedule and weight decay (one AdamW param group each);
        `learn_rate` is the run's --learn-rate."""
        ...

    def conditioning(self, model: BaseModel, prompts: list[str], rows: list[int] | None = None) -> Conditioning:
        """The batch's conditioning, with gradients reaching the parameters where they act through it; with `rows`,
        of those prompts only, padded as the whole batch is (a data-parallel process's share)."""
        ...

    def applied(self, model: BaseModel) -> contextlib.AbstractContextManager:
        """What the parameters change in the model, for the whole run (nothing for an embedding)."""
        ...

    def sampling(self) -> contextlib.AbstractContextManager:
        """Around previews and scores: dropout off."""
        ...

    def snapshot(self, step: int) -> Snapshot:
        """A detached copy of the current state, stamped with `step`."""
        ...

    def save(self, snapshot: Snapshot, path: Path, model: BaseModel, name: str) -> None:
        """Write a snapshot (A1111's format by the path's suffix) under the word `name`, recording `model` as its
        base model, atomically."""
        ...

    def state_hash(self, snapshot: Snapshot) -> str:
        """A short digest of a snapshot's weights: an optimizer state only resumes the weights it was saved with."""
        ...


def tensors_hash(tensors: list[tuple[str, torch.Tensor]]) -> str:
    """A short digest of named tensors (in the order given)."""
    digest = hashlib.sha256()
    for key, tensor in tensors:
        digest.update(key.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def stamped(embedding: Embedding, model: BaseModel, name: str) -> Embedding:
    """The embedding as A1111 saves a run's file: under the word `name` (NAME-STEP for a checkpoint), with the model
    it was trained on as `sd_checkpoint` (short hash) and `sd_checkpoint_name`."""
    return dataclasses.replace(embedding, name=name, sd_checkpoint=model.short_hash, sd_checkpoint_name=model.name)
