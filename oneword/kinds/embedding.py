"""The embedding kind: a Textual Inversion embedding, new vectors for one word, trained through the prompts that
contain it (A1111's `embeddings/`, `textual_inversion_loss.csv` and `image_embeddings/`)."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from oneword.errors import OnewordError

if TYPE_CHECKING:  # the rest is imported where it is used: the command line reads this kind without torch
    import torch

    from oneword.conditioning.encode import Conditioning
    from oneword.embeddings.embedding import Embedding
    from oneword.models.base import BaseModel
    from oneword.train.config import TrainConfig
    from oneword.train.groups import ParamGroup

MAX_VECTORS = 75
"""The most vectors per token (one prompt chunk)."""


def embedding_hash(embedding: Embedding) -> str:
    """The digest of an embedding's vectors, by encoder key."""
    from oneword.train.trainable import tensors_hash

    return tensors_hash([(key, embedding.vectors[key]) for key in sorted(embedding.vectors)])


class EmbeddingTrainable:
    """The vectors of one embedding as float32 parameters; only they are trained, spliced in as extra token ids."""

    kind = "embedding"
    weight_decay = 0.0
    """A1111 trains embeddings without weight decay."""

    def __init__(self, embedding: Embedding, device: torch.device) -> None:
        import torch

        self.name = embedding.name
        self.base = embedding
        self.params = {
            key: torch.nn.Parameter(tensor.detach().to(device=device, dtype=torch.float32).clone())
            for key, tensor in embedding.vectors.items()
        }

    def parameters(self) -> list[torch.Tensor]:
        """One (n_vectors, width) tensor per text encoder."""
        return list(self.params.values())

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        """One group, `vectors`, at the run's rate."""
        from oneword.train.groups import ParamGroup

        return [ParamGroup("vectors", self.parameters(), learn_rate, self.weight_decay)]

    def _live(self) -> Embedding:
        return dataclasses.replace(self.base, vectors=dict(self.params))

    def conditioning(self, model: BaseModel, prompts: list[str], rows: list[int] | None = None) -> Conditioning:
        """Every prompt of the batch through the text encoders at once (context: (B, 77 * chunks, width))."""
        from oneword.conditioning.encode import encode_prompts

        return encode_prompts(model, prompts, {self.name: self._live()}, grad=True, rows=rows)

    def applied(self, model: BaseModel) -> contextlib.AbstractContextManager:
        """Nothing: the vectors act through the prompts."""
        return contextlib.nullcontext()

    def sampling(self) -> contextlib.AbstractContextManager:
        """Nothing to switch."""
        return contextlib.nullcontext()

    def snapshot(self, step: int) -> Embedding:
        """The vectors now, as float32 CPU tensors of their own."""
        import torch

        vectors = {key: p.detach().to("cpu", torch.float32).clone() for key, p in self.params.items()}
        return dataclasses.replace(self.base, vectors=vectors, step=step, source=None)  # no file holds these yet

    def save(self, snapshot: Embedding, path: Path, model: BaseModel, name: str) -> None:
        """A1111 `.pt` (or `.safetensors` for SDXL), recording the base model."""
        from oneword.embeddings.formats import save_embedding
        from oneword.train.trainable import stamped

        save_embedding(stamped(snapshot, model, name), path, model=model)

    def state_hash(self, snapshot: Embedding) -> str:
        """The digest of the vectors, by encoder key."""
        return embedding_hash(snapshot)

    def load(self, embedding: Embedding) -> None:
        """Put an embedding's vectors into the parameters (same keys and shapes)."""
        import torch

        with torch.no_grad():
            for key, p in self.params.items():
                p.copy_(embedding.vectors[key].to(p))


class EmbeddingKind:
    """Textual Inversion, as A1111 trains it: rate 0.005, the subject_filewords template."""

    name = "embedding"
    defaults: ClassVar[dict[str, str]] = {"learn_rate": "0.005", "template": "subject_filewords"}
    options = ()
    folder = "embeddings"
    csv_name = "textual_inversion_loss.csv"
    preview_label = "Embedding step"
    hidden_in_previews = True
    command = None
    command_help = ""

    def problems(self, config: TrainConfig) -> list[str]:
        """--vectors from 1 to 75; no --caption-dropout (an empty prompt holds none of the vectors)."""
        problems = []
        if config.vectors < 1:
            problems.append(f"--vectors must be at least 1, but is {config.vectors}")
        if config.vectors > MAX_VECTORS:
            problems.append(f"--vectors must be at most {MAX_VECTORS}, but is {config.vectors}")
        if 0.0 < config.caption_dropout < 1.0:
            problems.append("--caption-dropout is for hypernetworks: an empty prompt holds none of an embedding's "
                            "vectors")
        return problems

    def trained_dir(self, config: TrainConfig) -> tuple[str, Path]:
        return "--embeddings-dir", Path(config.embeddings_dir)

    def suffix(self, model: BaseModel) -> str:
        """`.pt` as A1111 writes; SDXL `.safetensors` (its A1111 `.pt` holds the two tensors and no step)."""
        return ".safetensors" if model.is_sdxl else ".pt"

    def create(self, config: TrainConfig, model: BaseModel, name: str) -> Embedding:
        """From --init-text, --vectors per token."""
        from oneword.embeddings.create import create_embedding

        return create_embedding(model, name, config.init_text, config.vectors)

    def read(self, path: Path, model: BaseModel) -> Embedding:
        from oneword.embeddings.embedding import EmbeddingMismatch
        from oneword.embeddings.formats import load_embedding_file

        embedding = load_embedding_file(path)
        try:
            embedding.vectors_for(model)
        except EmbeddingMismatch as error:
            raise OnewordError(f"{path}: trained for another model, it does not fit {model.name}: {error}") from None
        return embedding

    def trainable(self, snapshot: Embedding, config: TrainConfig, device: torch.device) -> EmbeddingTrainable:
        return EmbeddingTrainable(snapshot, device)

    def state_hash(self, snapshot: Embedding) -> str:
        return embedding_hash(snapshot)


EMBEDDING = EmbeddingKind()
