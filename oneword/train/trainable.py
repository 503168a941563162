"""What a run trains, behind one small interface: here the vectors of an embedding."""

from __future__ import annotations

import dataclasses
from typing import Protocol

import torch

from oneword.conditioning.encode import Conditioning, encode_prompts
from oneword.embeddings.embedding import Embedding
from oneword.models.base import BaseModel


class Trainable(Protocol):
    """The trained part of a run: its parameters, how prompts are conditioned with it, and a snapshot to save."""

    name: str

    def parameters(self) -> list[torch.Tensor]:
        """The tensors the optimizer updates (float32 leaves)."""
        ...

    def conditioning(self, model: BaseModel, prompts: list[str]) -> Conditioning:
        """The batch's conditioning with gradients reaching the parameters."""
        ...

    def snapshot(self, step: int) -> Embedding:
        """A detached copy of the current state, stamped with `step`."""
        ...


class EmbeddingTrainable:
    """The vectors of one embedding as float32 parameters; only they are trained, spliced in as extra token ids."""

    def __init__(self, embedding: Embedding, device: torch.device) -> None:
        self.name = embedding.name
        self.base = embedding
        self.params = {
            key: torch.nn.Parameter(tensor.detach().to(device=device, dtype=torch.float32).clone())
            for key, tensor in embedding.vectors.items()
        }

    def parameters(self) -> list[torch.Tensor]:
        """One (n_vectors, width) tensor per text encoder."""
        return list(self.params.values())

    def _live(self) -> Embedding:
        return dataclasses.replace(self.base, vectors=dict(self.params))

    def conditioning(self, model: BaseModel, prompts: list[str]) -> Conditioning:
        """Every prompt of the batch through the text encoders at once (context: (B, 77 * chunks, width))."""
        return encode_prompts(model, prompts, {self.name: self._live()}, grad=True)

    def snapshot(self, step: int) -> Embedding:
        """The vectors now, as float32 CPU tensors of their own."""
        vectors = {key: p.detach().to("cpu", torch.float32).clone() for key, p in self.params.items()}
        return dataclasses.replace(self.base, vectors=vectors, step=step)

    def load(self, embedding: Embedding) -> None:
        """Put an embedding's vectors into the parameters (same keys and shapes)."""
        with torch.no_grad():
            for key, p in self.params.items():
                p.copy_(embedding.vectors[key].to(p))
