"""The toy model's pretraining data: rendered scenes, as pixels in [-1, 1], and their VAE latents."""

from __future__ import annotations

import random

import numpy as np
import torch
from diffusers import AutoencoderKL

from oneword.toy.world import Scene, random_scene, render


def render_dataset(n: int, seed: int) -> tuple[torch.Tensor, list[Scene]]:
    """`n` random scenes rendered: uint8 (n, 3, 64, 64), and the scenes."""
    rng = random.Random(seed)
    scenes = [random_scene(rng) for _ in range(n)]
    images = np.stack([np.asarray(render(s, seed=rng.randrange(2**31))) for s in scenes])
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), scenes


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (B, 3, 64, 64) as floats in [-1, 1], what the VAE reads."""
    return images.float() / 127.5 - 1.0  # (B, 3, 64, 64) in [-1, 1]


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """Posterior means of every image, unscaled: (n, 4, 8, 8)."""
    out = [vae.encode(to_float(images[i : i + 256])).latent_dist.mean for i in range(0, len(images), 256)]
    return torch.cat(out)
