"""What a run trains, behind one small interface: the vectors of an embedding, or the modules of a hypernetwork.

The loop sees only this interface: the parameters in named groups (each with its learning-rate schedule and
weight decay), how a batch is conditioned, what is applied to the model for
the run, a snapshot, and how a snapshot is saved. An embedding acts through the prompts that contain its name; a
hypernetwork acts on every UNet call while it is applied (the whole run: training, validation, previews, scores).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, Union

import torch

from oneword.conditioning.encode import Conditioning, encode_prompt, encode_prompts, prompt_chunks
from oneword.conditioning.tokens import EmbeddingVocabulary
from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.hypernetworks.apply import hypernetworks_applied
from oneword.hypernetworks.formats import save_hypernetwork
from oneword.hypernetworks.hypernetwork import Hypernetwork
from oneword.models.base import BaseModel
from oneword.train.groups import ParamGroup

Snapshot = Union[Embedding, Hypernetwork]
"""What a run saves at a checkpoint."""
CACHED_PROMPTS = 256
"""Prompts whose text conditioning a hypernetwork run keeps (SD 1.5: 118 KiB each in fp16)."""


class Trainable(Protocol):
    """The trained part of a run: its parameters, how prompts are conditioned with it, and a snapshot to save."""

    name: str
    kind: str
    """`embedding` or `hypernetwork`: names the log folder's files (A1111's layout)."""

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


def embeddings_of(snapshot: Snapshot) -> dict[str, Embedding]:
    """The embeddings a prompt needs to sample with a snapshot ({} for a hypernetwork: it is applied already)."""
    return {snapshot.name: snapshot} if isinstance(snapshot, Embedding) else {}


def tensors_hash(tensors: list[tuple[str, torch.Tensor]]) -> str:
    """A short digest of named tensors (in the order given)."""
    digest = hashlib.sha256()
    for key, tensor in tensors:
        digest.update(key.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def embedding_hash(embedding: Embedding) -> str:
    """The digest of an embedding's vectors, by encoder key."""
    return tensors_hash([(key, embedding.vectors[key]) for key in sorted(embedding.vectors)])


def hypernetwork_hash(hypernetwork: Hypernetwork) -> str:
    """The digest of every module's weights of a hypernetwork."""
    return tensors_hash([(f"{w}.{i}.{k}", t) for w in hypernetwork.widths for i, module in
                         enumerate(hypernetwork.layers[w]) for k, t in module.state_dict().items()])


def stamped(embedding: Embedding, model: BaseModel, name: str) -> Embedding:
    """The embedding as A1111 saves a run's file: under the word `name` (NAME-STEP for a checkpoint), with the model
    it was trained on as `sd_checkpoint` (short hash) and `sd_checkpoint_name`."""
    return dataclasses.replace(embedding, name=name, sd_checkpoint=model.short_hash, sd_checkpoint_name=model.name)


class EmbeddingTrainable:
    """The vectors of one embedding as float32 parameters; only they are trained, spliced in as extra token ids."""

    kind = "embedding"
    weight_decay = 0.0
    """A1111 trains embeddings without weight decay."""

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

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        """One group, `vectors`, at the run's rate."""
        return [ParamGroup("vectors", self.parameters(), learn_rate, self.weight_decay)]

    def _live(self) -> Embedding:
        return dataclasses.replace(self.base, vectors=dict(self.params))

    def conditioning(self, model: BaseModel, prompts: list[str], rows: list[int] | None = None) -> Conditioning:
        """Every prompt of the batch through the text encoders at once (context: (B, 77 * chunks, width))."""
        return encode_prompts(model, prompts, {self.name: self._live()}, grad=True, rows=rows)

    def applied(self, model: BaseModel) -> contextlib.AbstractContextManager:
        """Nothing: the vectors act through the prompts."""
        return contextlib.nullcontext()

    def sampling(self) -> contextlib.AbstractContextManager:
        """Nothing to switch."""
        return contextlib.nullcontext()

    def snapshot(self, step: int) -> Embedding:
        """The vectors now, as float32 CPU tensors of their own."""
        vectors = {key: p.detach().to("cpu", torch.float32).clone() for key, p in self.params.items()}
        return dataclasses.replace(self.base, vectors=vectors, step=step)

    def save(self, snapshot: Embedding, path: Path, model: BaseModel, name: str) -> None:
        """A1111 `.pt` (or `.safetensors` for SDXL), recording the base model."""
        save_embedding(stamped(snapshot, model, name), path, model=model)

    def state_hash(self, snapshot: Embedding) -> str:
        """The digest of the vectors, by encoder key."""
        return embedding_hash(snapshot)

    def load(self, embedding: Embedding) -> None:
        """Put an embedding's vectors into the parameters (same keys and shapes)."""
        with torch.no_grad():
            for key, p in self.params.items():
                p.copy_(embedding.vectors[key].to(p))


class HypernetworkTrainable:
    """The modules of one hypernetwork (float32), applied at strength 1 to the model's UNet for the run."""

    kind = "hypernetwork"
    weight_decay = 0.01
    """A1111 keeps torch's AdamW default for hypernetworks."""

    def __init__(self, hypernetwork: Hypernetwork, device: torch.device, cache_conditioning: bool = False) -> None:
        self.name = hypernetwork.name
        self.hypernetwork = hypernetwork.to(device)
        for p in self.hypernetwork.parameters():
            p.requires_grad_(True)
        self.cache_conditioning = cache_conditioning
        self._chunk_counts: dict[str, int] = {}
        self._encoded: dict[tuple[str, int], Conditioning] = {}

    def parameters(self) -> list[torch.Tensor]:
        """Every module's weights, K before V, widths in increasing order."""
        return self.hypernetwork.parameters()

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        """One group, `modules`, at the run's rate."""
        return [ParamGroup("modules", self.parameters(), learn_rate, self.weight_decay)]

    def conditioning(self, model: BaseModel, prompts: list[str], rows: list[int] | None = None) -> Conditioning:
        """The plain text conditioning (the hypernetwork acts inside the UNet); with `cache_conditioning`, each
        prompt's is computed once (per chunk count) and reused: it has no gradient and the text encoders are frozen."""
        if not self.cache_conditioning:
            return encode_prompts(model, prompts, {}, grad=False, rows=rows)
        for prompt in prompts:
            if prompt not in self._chunk_counts:
                self._chunk_counts[prompt] = len(prompt_chunks(model, prompt, EmbeddingVocabulary(model)))
        n_chunks = max(self._chunk_counts[p] for p in prompts)
        parts = [self._encoded_prompt(model, prompts[r], n_chunks) for r in (range(len(prompts)) if rows is None else rows)]
        pooled = None if parts[0].pooled is None else torch.cat([c.pooled for c in parts])
        return Conditioning(context=torch.cat([c.context for c in parts]), pooled=pooled)

    def _encoded_prompt(self, model: BaseModel, prompt: str, n_chunks: int) -> Conditioning:
        key = (prompt, n_chunks)
        if key not in self._encoded:
            if len(self._encoded) >= CACHED_PROMPTS:
                del self._encoded[next(iter(self._encoded))]  # the oldest
            self._encoded[key] = encode_prompt(model, prompt, n_chunks=n_chunks)
        return self._encoded[key]

    @contextlib.contextmanager
    def applied(self, model: BaseModel) -> Iterator[None]:
        """The hypernetwork on every attention layer of its widths, dropout on, for the run."""
        self.hypernetwork.train(True)
        try:
            with hypernetworks_applied(model.unet, [(self.hypernetwork, 1.0)]):
                yield
        finally:
            self.hypernetwork.train(False)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        """Dropout off while sampling, back on after."""
        self.hypernetwork.train(False)
        try:
            yield
        finally:
            self.hypernetwork.train(True)

    def snapshot(self, step: int) -> Hypernetwork:
        """A CPU copy of the modules (in eval mode), stamped with `step`."""
        copied = copy.deepcopy(self.hypernetwork).to("cpu")
        for p in copied.parameters():
            p.requires_grad_(False)
        copied.train(False)
        copied.step = step
        return copied

    def save(self, snapshot: Hypernetwork, path: Path, model: BaseModel, name: str) -> None:
        """A1111 `.pt` (or `.safetensors`), recording the base model."""
        snapshot.sd_checkpoint, snapshot.sd_checkpoint_name = model.short_hash, model.name
        snapshot.name = name
        save_hypernetwork(snapshot, path)

    def state_hash(self, snapshot: Hypernetwork) -> str:
        """The digest of every module's weights."""
        return hypernetwork_hash(snapshot)

    def load(self, hypernetwork: Hypernetwork) -> None:
        """Put another hypernetwork's weights (same structure) into the modules."""
        with torch.no_grad():
            for mine, theirs in zip(self.hypernetwork.parameters(), hypernetwork.parameters()):
                mine.copy_(theirs.to(mine))
