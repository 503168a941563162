"""A weight-free score: how close the base model's own view of the samples is to its view of the training images.

Features: the UNet's mid-block output (pooled over space) for latents noised to one fixed timestep with fixed
noise, conditioned on the empty prompt, so that only the picture speaks. Metric: the mean cosine similarity of each
sample's features to the mean direction of the training images' features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from oneword.diffusion import add_noise, alpha_bar, unet_predict
from oneword.generate.txt2img import generate_latents
from oneword.score.context import ScoreContext

FEATURE_TIMESTEP = 0.25
"""Where on the noise schedule the features are read, as a share of the timesteps (low noise: the content shows)."""


@torch.no_grad()
def unet_features(context: ScoreContext, latents: torch.Tensor, seed: int) -> torch.Tensor:
    """(B, C) mid-block features of `latents` (B, 4, h, w), noised at FEATURE_TIMESTEP with noise from `seed`."""
    model = context.model
    x0 = latents.to(model.unet.device, torch.float32)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(x0.device)
    t = torch.full((len(x0),), int(FEATURE_TIMESTEP * len(context.alphas_cumprod)), device=x0.device)
    noisy = add_noise(x0, noise, alpha_bar(context.alphas_cumprod, t))
    captured: list[torch.Tensor] = []
    handle = model.unet.mid_block.register_forward_hook(lambda module, args, out: captured.append(out))
    try:
        unet_predict(model, noisy, t, context.condition([""] * len(x0)))
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

    def reference(self, context: ScoreContext) -> torch.Tensor:
        """(M, C) features of the training images (posterior means), computed once per scorer."""
        if self._reference is None:
            self._reference = torch.cat([unet_features(context, m.unsqueeze(0), self.seed + i)
                                         for i, m in enumerate(context.latents)])
        return self._reference

    def score(self, context: ScoreContext) -> dict[str, float]:
        """{"features": similarity in [-1, 1]} of `self.samples` samples drawn with the checkpoint."""
        rows = []
        for k, prompt in enumerate(context.prompts(self.samples)):
            config = context.sample_config(prompt, self.seed + k)
            latents = generate_latents(context.model, config, context.embeddings)
            rows.append(unet_features(context, latents, self.seed + 10_000 + k))
        return {self.key: cosine_to_mean(torch.cat(rows), self.reference(context))}
