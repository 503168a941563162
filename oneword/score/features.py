"""A weight-free score: how close the base model's own view of the samples is to its view of the training images.

Features: the UNet's mid-block output (pooled over space) for latents noised to one fixed timestep with fixed
noise, conditioned on the empty prompt, so that only the picture speaks. Metric: the mean cosine similarity of each
sample's features to the mean direction of the training images' features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from oneword.generate.config import GenerateConfig
from oneword.generate.txt2img import generate_latents
from oneword.score import sample_prompts
from oneword.train.trainable import embeddings_of

if TYPE_CHECKING:
    from oneword.embeddings.embedding import Embedding
    from oneword.train.loop import Run

FEATURE_TIMESTEP = 0.25
"""Where on the noise schedule the features are read, as a share of the timesteps (low noise: the content shows)."""


@torch.no_grad()
def unet_features(run: Run, latents: torch.Tensor, seed: int) -> torch.Tensor:
    """(B, C) mid-block features of `latents` (B, 4, h, w), noised at FEATURE_TIMESTEP with noise from `seed`."""
    from oneword.train.loop import unet_predict

    model = run.model
    x0 = latents.to(model.unet.device, torch.float32)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(x0.device)
    t = torch.full((len(x0),), int(FEATURE_TIMESTEP * len(run.alphas_cumprod)), device=x0.device)
    alphas = run.alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = alphas.sqrt() * x0 + (1 - alphas).sqrt() * noise
    captured: list[torch.Tensor] = []
    handle = model.unet.mid_block.register_forward_hook(lambda module, args, out: captured.append(out))
    try:
        unet_predict(model, noisy, t, run.trainable.conditioning(model, [""] * len(x0)))
    finally:
        handle.remove()
    return captured[0].float().mean(dim=(2, 3)).cpu()  # (B, C)


def cosine_to_mean(samples: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean cosine similarity of each row of `samples` (N, C) to the mean direction of `reference` (M, C)."""
    direction = torch.nn.functional.normalize(reference, dim=1).mean(dim=0)
    return float(torch.nn.functional.cosine_similarity(samples, direction.unsqueeze(0), dim=1).mean())


@dataclass
class FeatureScorer:
    """Samples drawn with the run's preview settings and prompts like its training prompts, compared with the
    training images in the UNet's feature space."""

    samples: int = 8
    seed: int = 0
    key: str = "features"
    _reference: torch.Tensor | None = field(default=None, repr=False)

    def reference(self, run: Run) -> torch.Tensor:
        """(M, C) features of the training images (posterior means), computed once per scorer."""
        if self._reference is None:
            self._reference = torch.cat([unet_features(run, m.unsqueeze(0), self.seed + i)
                                         for i, m in enumerate(run.latents.mean)])
        return self._reference

    def score(self, run: Run, embedding: Embedding) -> dict[str, float]:
        """{"features": similarity in [-1, 1]} of `self.samples` samples drawn with `embedding`."""
        rows = []
        for k, prompt in enumerate(sample_prompts(run, self.samples)):
            config = GenerateConfig(prompt=prompt, negative=run.preview.negative, seed=self.seed + k,
                                    steps=run.preview.steps, cfg=run.preview.cfg, sampler=run.preview.sampler,
                                    width=run.preview.width, height=run.preview.height)
            latents = generate_latents(run.model, config, embeddings_of(embedding))
            rows.append(unet_features(run, latents, self.seed + 10_000 + k))
        return {self.key: cosine_to_mean(torch.cat(rows), self.reference(run))}
