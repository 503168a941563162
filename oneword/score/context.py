"""What a scorer sees of a run at one checkpoint: the model, the snapshot, and how the run prompts and previews.

The training loop builds it from its run (oneword/train/scoring.py); scorers know nothing of the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from oneword.generate.config import GenerateConfig
from oneword.models.base import BaseModel
from oneword.snapshot import Snapshot

if TYPE_CHECKING:
    from oneword.conditioning.encode import Conditioning
    from oneword.embeddings.embedding import Embedding


@dataclass(frozen=True, eq=False)
class ScoreContext:
    """One checkpoint of a run, with what scoring it needs (nothing here changes the run)."""

    model: BaseModel
    snapshot: Snapshot
    embeddings: Mapping[str, Embedding]
    """The embeddings a prompt needs to sample with the snapshot: its `token_vectors()`."""
    prompt: Callable[[int], str]
    """The k-th prompt as the run trains: its template lines in turn, filled with the images' captions."""
    template: str
    """The run's `--template` (a shipped name or a path)."""
    preview: GenerateConfig
    """The run's preview settings (sampler, steps, cfg, size, negative prompt)."""
    captions: tuple[str, ...]
    """The training images' captions."""
    image_paths: tuple[Path, ...]
    """The training images' files."""
    latents: tuple[torch.Tensor, ...]
    """The training images' posterior means, (4, h, w) each, scaled as the UNet sees them."""
    alphas_cumprod: torch.Tensor
    """The scheduler's cumulative alphas on the model's device, float32 (T,)."""
    condition: Callable[[list[str]], Conditioning]
    """The run's text conditioning of a batch of prompts (the trained vectors in it)."""

    @property
    def trigger_word(self) -> str | None:
        """The snapshot's word, None for one that acts on every prompt (a hypernetwork)."""
        return self.snapshot.trigger_word

    def prompts(self, n: int) -> list[str]:
        """The first `n` prompts as the run trains."""
        return [self.prompt(k) for k in range(n)]

    def sample_config(self, prompt: str, seed: int) -> GenerateConfig:
        """One sample of `prompt` from `seed`, with the run's preview settings."""
        p = self.preview
        return GenerateConfig(prompt=prompt, negative=p.negative, seed=seed, steps=p.steps, cfg=p.cfg,
                              sampler=p.sampler, width=p.width, height=p.height)
