"""Embedding vectors spliced into a text encoder's token table as ids past the vocabulary."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn
from transformers import CLIPTokenizer, PreTrainedModel

from oneword.embeddings.embedding import Embedding, EmbeddingMismatch
from oneword.errors import OnewordError
from oneword.models.base import BaseModel

MAX_VECTORS = 75
"""Vectors one embedding may have: all of them must fit in one 75-token prompt chunk."""


class ExtendedTokenEmbedding(nn.Module):
    """A token table whose ids past the base vocabulary V look up `extra`: id V + i gives `extra[i]`.

    Only `extra` can receive gradients: the base table is used as it is. `extra` may be an fp32 parameter while
    the base table is fp16; it is cast to the base dtype and device in forward, which gradients flow through.
    """

    def __init__(self, base: nn.Embedding, extra: torch.Tensor) -> None:
        super().__init__()
        if extra.dim() != 2 or extra.shape[1] != base.embedding_dim:
            raise ValueError(
                f"extra token vectors have shape {tuple(extra.shape)}; expected (n, {base.embedding_dim})"
            )
        self.base = base
        # A Parameter is registered (optimizers and .to() see it); a plain tensor is kept as it is, so that
        # vectors computed from trainable ones (a concatenation, a cast) stay in the autograd graph.
        self.extra = extra

    @property
    def vocab_size(self) -> int:
        """V: the first id that looks up `extra`."""
        return self.base.num_embeddings

    @property
    def weight(self) -> torch.Tensor:
        """The base table (what code that reads the dtype, device or width of a token table expects)."""
        return self.base.weight

    @property
    def embedding_dim(self) -> int:
        """Width of a token vector."""
        return self.base.embedding_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Token vectors for `ids` (any shape) -> ids.shape + (width,)."""
        vocab = self.vocab_size
        is_extra = ids >= vocab
        out = self.base(ids.masked_fill(is_extra, 0))
        if not bool(is_extra.any()):
            return out
        top = int(ids.max()) - vocab
        if top >= self.extra.shape[0]:
            raise ValueError(f"token id {vocab + top} is past the {self.extra.shape[0]} extra vectors")
        extra = self.extra.to(device=out.device, dtype=out.dtype)
        rows = extra[(ids - vocab).clamp(min=0)]  # (..., width)
        return torch.where(is_extra.unsqueeze(-1), rows, out)


@contextmanager
def extended_tokens(encoder: PreTrainedModel, extra: torch.Tensor) -> Iterator[ExtendedTokenEmbedding]:
    """Install an ExtendedTokenEmbedding with `extra` on a text encoder; the original table is restored after."""
    base = encoder.get_input_embeddings()
    if isinstance(base, ExtendedTokenEmbedding):
        raise RuntimeError("the text encoder already has extra token vectors installed")
    wrapper = ExtendedTokenEmbedding(base, extra)
    encoder.set_input_embeddings(wrapper)
    try:
        yield wrapper
    finally:
        encoder.set_input_embeddings(base)


class EmbeddingVocabulary:
    """Finds embedding names in token ids and gives each embedding found placeholder ids past the vocabulary.

    Names are matched as token sequences (CLIP lowercases, so case does not matter), the longest first. The
    vectors of each embedding used are read once per model encoder, in the order the embeddings were first used.
    """

    def __init__(self, model: BaseModel, embeddings: Mapping[str, Embedding] | None = None) -> None:
        sizes = {e.model.get_input_embeddings().num_embeddings for e in model.encoders}
        if len(sizes) != 1:
            raise ValueError(f"the text encoders of {model.name} have token tables of different sizes {sorted(sizes)}")
        self.model = model
        self.vocab_size = sizes.pop()
        tokenizer = model.encoders[0].tokenizer
        by_first: dict[int, list[tuple[list[int], str]]] = {}
        for word in (embeddings or {}):
            ids = token_ids(tokenizer, word)
            if ids:
                by_first.setdefault(ids[0], []).append((ids, word))
        for candidates in by_first.values():
            candidates.sort(key=lambda c: len(c[0]), reverse=True)  # stable: equal names keep mapping order
        self._by_first = by_first
        self._embeddings = embeddings or {}
        self._placeholders: dict[str, list[int]] = {}
        self._vectors: list[list[torch.Tensor]] = []  # per embedding used: one (n, width) per encoder

    def match(self, ids: list[int], position: int) -> tuple[str, int] | None:
        """The embedding word whose tokens start at `position` of `ids`, with its length in tokens, or None."""
        for name_ids, word in self._by_first.get(ids[position], ()):
            if ids[position : position + len(name_ids)] == name_ids:
                return word, len(name_ids)
        return None

    def placeholders(self, word: str) -> list[int]:
        """The ids that stand for the vectors of embedding `word` (one id per vector)."""
        if word not in self._placeholders:
            try:
                vectors = list(self._embeddings[word].vectors_for(self.model))
            except EmbeddingMismatch as error:
                raise OnewordError(f"embedding {word!r} does not fit {self.model.name}: {error}") from error
            counts = {v.shape[0] for v in vectors}
            if len(counts) != 1:
                raise OnewordError(f"embedding {word!r} has a different number of vectors per text encoder")
            count = counts.pop()
            if not 1 <= count <= MAX_VECTORS:
                raise OnewordError(f"embedding {word!r} has {count} vectors; a prompt chunk holds 1 to {MAX_VECTORS}")
            first = self.vocab_size + sum(v[0].shape[0] for v in self._vectors)
            self._placeholders[word] = list(range(first, first + count))
            self._vectors.append(vectors)
        return self._placeholders[word]

    @property
    def used(self) -> list[str]:
        """The embedding words found so far, in the order they were first used."""
        return list(self._placeholders)

    def tables(self) -> list[torch.Tensor]:
        """Per model encoder, the vectors of every embedding used, in placeholder order: (n_placeholders, width)."""
        tables = []
        for i, encoder in enumerate(self.model.encoders):
            parts = [vectors[i] for vectors in self._vectors]
            if not parts:
                weight = encoder.model.get_input_embeddings().weight
                parts = [weight.new_zeros(0, encoder.width)]
            tables.append(torch.cat(parts, dim=0))
        return tables


def token_ids(tokenizer: CLIPTokenizer, text: str) -> list[int]:
    """The BPE ids of `text`, without BOS/EOS and without truncation."""
    if not text:
        return []
    # verbose=False: a long prompt is chunked, so the tokenizer's "longer than 77" warning does not apply.
    return tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
