"""An embedding in memory: the vectors of one prompt word, per text encoder, and where they came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where vectors are checked: `oneword inspect` reads a file's shapes without it
    import torch

    from oneword.models.base import BaseModel

SINGLE_KEY = "*"
"""Key of the vectors of a single-encoder embedding (SD 1.x, SD 2.x), as in A1111's `string_to_param`."""
SDXL_KEYS = ("clip_l", "clip_g")
"""Keys of an SDXL embedding, in the order of SDXL's text encoders (A1111, kohya, OneTrainer, ComfyUI)."""
MAX_VECTORS = 75
"""A prompt chunk holds 75 tokens (77 with BOS and EOS) and A1111 never splits an embedding across chunks, so
one word can stand for at most 75 vectors."""
MAX_ABS = 1e4
"""Largest magnitude accepted in a vector: token embeddings are below 1 and trained vectors stay within a few
units; values beyond this (or NaN, inf) only ever make the text encoder overflow and the image black."""


class EmbeddingMismatch(ValueError):
    """An embedding that does not fit a model (its widths or its encoders); the message is the reason."""


@dataclass
class Embedding:
    """The vectors that stand for one prompt word, with A1111's bookkeeping fields."""

    name: str
    """The prompt word (the file stem, or the name stored inside an image)."""
    vectors: dict[str, torch.Tensor]
    """Encoder key -> (n_vectors, width) float32 CPU tensor: `*` for SD 1.x/2.x, `clip_l` and `clip_g` for SDXL."""
    step: int | None = None
    """Training steps done, as A1111 records it (None when unknown)."""
    sd_checkpoint: str | None = None
    """A1111 short hash of the base model it was trained on."""
    sd_checkpoint_name: str | None = None
    """Name of that base model."""
    source: Path | None = None
    """The file it was read from."""

    def __post_init__(self) -> None:
        problems = vector_problems(self.vectors)
        if problems:
            raise ValueError(f"embedding {self.name!r}: {'; '.join(problems)}")

    @property
    def trigger_word(self) -> str:
        """The word that calls the vectors up in a prompt: its name."""
        return self.name

    def token_vectors(self) -> dict[str, Embedding]:
        """What it adds to the text side: itself, under its word (the snapshot protocol, oneword/snapshot.py)."""
        return {self.name: self}

    def network_modules(self) -> list:
        """Nothing: it acts through the prompts alone."""
        return []

    @property
    def n_vectors(self) -> int:
        """Number of vectors (tokens) the word stands for."""
        return next(iter(self.vectors.values())).shape[0]

    @property
    def is_sdxl(self) -> bool:
        """Whether it holds SDXL's two vector sets (clip_l and clip_g)."""
        return SINGLE_KEY not in self.vectors

    @property
    def widths(self) -> dict[str, int]:
        """Encoder key -> width of its vectors."""
        return {key: tensor.shape[1] for key, tensor in self.vectors.items()}

    def vectors_for(self, model: BaseModel) -> list[torch.Tensor]:
        """One (n, width) tensor per model encoder, in `model.encoders` order; EmbeddingMismatch if it does not fit."""
        encoders = model.encoders
        if len(encoders) == 1:
            if self.is_sdxl:
                raise EmbeddingMismatch(
                    f"an SDXL embedding (clip_l, clip_g) does not fit a {model.kind} model, which has one text encoder"
                )
            width, expected = self.vectors[SINGLE_KEY].shape[1], encoders[0].width
            if width != expected:
                raise EmbeddingMismatch(f"width {width} does not match the model's text encoder ({expected})")
            return [self.vectors[SINGLE_KEY]]
        keys = [encoder.spec.key for encoder in encoders]
        if any(key not in self.vectors for key in keys):
            width = next(iter(self.vectors.values())).shape[1]
            needs = " and ".join(keys)
            raise EmbeddingMismatch(
                f"{model.kind.upper()} needs {needs}; this embedding has one set of vectors (width {width})"
            )
        problems = [
            f"{key} width {self.vectors[key].shape[1]} does not match the model's {key} encoder ({encoder.width})"
            for key, encoder in zip(keys, encoders)
            if self.vectors[key].shape[1] != encoder.width
        ]
        if problems:
            raise EmbeddingMismatch("; ".join(problems))
        return [self.vectors[key] for key in keys]


def vector_problems(vectors: dict[str, torch.Tensor]) -> list[str]:
    """What is wrong with a `vectors` dict (keys, types, shapes, counts); empty when it is a valid embedding."""
    import torch

    keys = set(vectors)
    if keys != {SINGLE_KEY} and keys != set(SDXL_KEYS):
        return [f"vectors must have the key '*' or the keys clip_l and clip_g, not {sorted(keys)}"]
    problems = []
    for key, tensor in vectors.items():
        if not isinstance(tensor, torch.Tensor):
            problems.append(f"{key} is a {type(tensor).__name__}, not a tensor")
        elif tensor.dim() != 2 or 0 in tensor.shape:
            problems.append(f"{key} has shape {list(tensor.shape)}, expected [n_vectors, width]")
    if not problems and len({tensor.shape[0] for tensor in vectors.values()}) > 1:
        counts = ", ".join(f"{key} has {tensor.shape[0]}" for key, tensor in vectors.items())
        problems.append(f"clip_l and clip_g must have as many vectors ({counts})")
    return problems
