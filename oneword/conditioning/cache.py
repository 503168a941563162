"""Text conditioning computed once per prompt and reused, for runs whose text encoders are frozen and whose prompts
carry no trained vectors (a hypernetwork's, a LoRA's that leaves the text encoder alone)."""

from __future__ import annotations

import torch

from oneword.conditioning.encode import Conditioning, encode_prompt, prompt_chunks
from oneword.conditioning.tokens import EmbeddingVocabulary
from oneword.models.base import BaseModel

CACHED_PROMPTS = 256
"""Prompts whose text conditioning a run keeps (SD 1.5: 118 KiB each in fp16)."""


class ConditioningCache:
    """Each prompt's plain conditioning (per chunk count), the oldest forgotten beyond `CACHED_PROMPTS`."""

    def __init__(self) -> None:
        self._chunk_counts: dict[str, int] = {}
        self._encoded: dict[tuple[str, int], Conditioning] = {}

    def conditioning(self, model: BaseModel, prompts: list[str], rows: list[int] | None = None) -> Conditioning:
        """The batch's conditioning as `encode_prompts` gives it without gradients, padded to the batch's chunks."""
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
