"""What a pivotal run trains: the vectors of its word (as an embedding run trains them) and a LoRA (as a LoRA run
trains it), in one loop, each with its own schedule.

The prompts hold the word, its vectors spliced in as an embedding's; the LoRA's hooks act on the UNet and the text
encoder while the run applies them, so the vectors are learned through the LoRA's text-encoder layers. The vectors'
group may end before the LoRA's (`--ti-frac`): the loop then holds them still, as it does any group whose schedule
ran out, and the LoRA goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from pathlib import Path

import torch

from oneword.conditioning.encode import Conditioning
from oneword.embeddings.embedding import Embedding
from oneword.kinds.embedding import EmbeddingTrainable, embedding_hash
from oneword.lora.network import Lora
from oneword.lora.trainable import LoraSettings, LoraTrainable, lora_hash
from oneword.models.base import BaseModel
from oneword.train.groups import ParamGroup
from oneword.train.schedule import parse_schedule


def vectors_schedule(vectors_lr: str, ti_frac: float, max_steps: int) -> str:
    """The vectors' schedule string: `vectors_lr` cut at `ti_frac` of `max_steps` (at least one step), after which
    the loop holds the vectors still."""
    end = max(1, min(max_steps, round(ti_frac * max_steps)))
    entries = parse_schedule(vectors_lr, end, "--vectors-lr").entries
    return ", ".join(f"{value!r}:{step}" for value, step in entries)


def the_word(snapshot: Lora) -> Embedding:
    """The snapshot's one bundled embedding, as the word of the run (its name)."""
    (embedding,) = snapshot.embeddings.values()
    return dataclasses.replace(embedding, name=snapshot.name)


def pivotal_hash(snapshot: Lora) -> str:
    """The digest of the LoRA's layers (rounded to fp16, as its files keep them) and of the word's vectors."""
    both = f"{lora_hash(snapshot)}:{embedding_hash(the_word(snapshot))}"
    return hashlib.sha256(both.encode()).hexdigest()[:16]


class PivotalTrainable:
    """A LoRA and the vectors of one word, trained together: groups `unet`, `text_encoder` (when the LoRA trains
    it) and `vectors`."""

    kind = "pivotal"

    def __init__(self, snapshot: Lora, device: torch.device, settings: LoraSettings, vectors_lr: str) -> None:
        self.name = snapshot.name
        self.lora = LoraTrainable(dataclasses.replace(snapshot, embeddings={}), device, settings)
        self.word = EmbeddingTrainable(the_word(snapshot), device)
        self.vectors_lr = vectors_lr
        """The vectors' schedule string, cut at --ti-frac."""

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        """The LoRA's groups (`unet` at the run's rate, `text_encoder`), then `vectors` at --vectors-lr."""
        vectors = ParamGroup("vectors", self.word.parameters(), self.vectors_lr, self.word.weight_decay,
                             option="--vectors-lr")
        return [*self.lora.groups(learn_rate), vectors]

    def parameters(self) -> list[torch.Tensor]:
        """The LoRA's trained tensors, then the word's vectors (the groups' order)."""
        return [*self.lora.parameters(), *self.word.parameters()]

    def conditioning(self, model: BaseModel, prompts: list[str], rows: list[int] | None = None) -> Conditioning:
        """The prompts with the word's vectors spliced in, through the text encoders as the LoRA changes them, with
        gradients (context: (B, 77 * chunks, width))."""
        return self.word.conditioning(model, prompts, rows)

    def applied(self, model: BaseModel) -> contextlib.AbstractContextManager:
        """The LoRA's hooks, for the run."""
        return self.lora.applied(model)

    def sampling(self) -> contextlib.AbstractContextManager:
        """Nothing to switch (no dropout)."""
        return contextlib.nullcontext()

    def snapshot(self, step: int) -> Lora:
        """The LoRA's layers and the word's vectors now, the word bundled."""
        word = self.word.snapshot(step)
        return dataclasses.replace(self.lora.snapshot(step), embeddings={word.name: word})

    def save(self, snapshot: Lora, path: Path, model: BaseModel, name: str) -> None:
        """kohya's LoRA file (`name`, NAME-STEP for a checkpoint) with the word bundled as A1111 reads it
        (`bundle_emb.WORD.string_to_param.*`, SDXL `bundle_emb.WORD.clip_l`/`.clip_g`); the word stays the run's."""
        self.lora.save(snapshot, path, model, name)

    def state_hash(self, snapshot: Lora) -> str:
        """The digest of the layers (rounded to fp16) and of the vectors."""
        return pivotal_hash(snapshot)

    def exact_weights(self, snapshot: Lora) -> dict[str, torch.Tensor]:
        """The LoRA's layers at float32 where the file rounds them (the vectors are written at float32)."""
        return self.lora.exact_weights(snapshot)
