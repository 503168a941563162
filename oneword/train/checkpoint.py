"""Checkpoints of a run: the embedding after N steps, and the optimizer state that lets `--resume` continue it."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.files import atomic_write
from oneword.models.base import BaseModel
from oneword.safeload import load_pickle

OPTIM_SUFFIX = ".optim"
"""A1111 keeps the optimizer state beside the embedding: `NAME.pt.optim` (`NAME.safetensors.optim`)."""


def vectors_hash(embedding: Embedding) -> str:
    """A short digest of the vectors: an optimizer state only resumes the vectors it was saved with."""
    digest = hashlib.sha256()
    for key in sorted(embedding.vectors):
        digest.update(key.encode())
        digest.update(embedding.vectors[key].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_with_optimizer(embedding: Embedding, path: Path, model: BaseModel, optimizer: torch.optim.Optimizer) -> None:
    """Write the embedding and, beside it, the optimizer state (both atomically; the state first)."""
    state = {
        "hash": vectors_hash(embedding),
        "optimizer_name": type(optimizer).__name__,
        "optimizer_state_dict": optimizer.state_dict(),
        "step": embedding.step,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(optim_path(path), lambda f: f.write(buffer.getvalue()))
    save_embedding(embedding, path, model=model)


def optim_path(path: Path) -> Path:
    """`NAME.pt.optim` for `NAME.pt`."""
    return path.with_name(path.name + OPTIM_SUFFIX)


def load_optimizer_state(embedding: Embedding, path: Path, optimizer_name: str) -> tuple[dict | None, str | None]:
    """The saved optimizer state for `embedding`, or None with the reason (missing, another optimizer, other vectors)."""
    file = optim_path(path)
    if not file.is_file():
        return None, f"no optimizer state beside it ({file.name}); Adam's moments start from zero"
    data = load_pickle(file)  # a refused or unreadable file is a OnewordError naming it
    if not isinstance(data, dict) or "optimizer_state_dict" not in data:
        return None, f"{file.name} holds no optimizer state; Adam's moments start from zero"
    if data.get("optimizer_name") != optimizer_name:
        return None, f"{file.name} is for {data.get('optimizer_name')}, not {optimizer_name}; starting its state afresh"
    if data.get("hash") != vectors_hash(embedding):
        return None, f"{file.name} was saved with other vectors; Adam's moments start from zero"
    return data["optimizer_state_dict"], None
