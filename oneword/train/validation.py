"""A loss that shows convergence: the denoising error on one fixed batch, the same at every measurement.

The per-step training loss is noise: its random timestep decides most of its value. Measured on fixed latents,
noise, timesteps (spread over the whole range) and prompts, without gradients, the loss moves only because the
trained vectors move (Voronov et al., "Is This Loss Informative?", NeurIPS 2023).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from oneword.train.templates import fill_template

VALIDATION_GROUP = 4
"""Validation samples measured together (at least the training batch): no gradients, so little memory."""
VALIDATION_SEED = 20231
"""Offset of the validation batch's randomness from the run's seed (it never touches the training draws)."""


@dataclass
class ValidationBatch:
    """Image index, noise, timestep and prompt of each sample; the same objects at every measurement."""

    indices: list[int]
    noise: list[torch.Tensor]
    """Per sample (4, h, w), the shape of its image's latent."""
    timesteps: list[int]
    prompts: list[str]


def validation_batch(latent_shapes: list[tuple[int, ...]], captions: list[str], lines: list[str], name: str,
                     n_timesteps: int, size: int, seed: int) -> ValidationBatch:
    """`size` samples cycling over the images, timesteps evenly spread over `[0, n_timesteps)` and shuffled
    among them, template lines taken in turn; noise and shuffling from `seed` alone."""
    gen = torch.Generator().manual_seed(seed + VALIDATION_SEED)
    rng = random.Random(seed + VALIDATION_SEED)
    indices = [i % len(latent_shapes) for i in range(size)]
    timesteps = [int((k + 0.5) * n_timesteps / size) for k in range(size)]
    rng.shuffle(timesteps)
    noise = [torch.randn(latent_shapes[i], generator=gen) for i in indices]
    prompts = [fill_template(lines[k % len(lines)], name, captions[i], random.Random(k)) for k, i in enumerate(indices)]
    return ValidationBatch(indices, noise, timesteps, prompts)


def groups_of_equal_shape(batch: ValidationBatch, max_batch: int) -> list[list[int]]:
    """Positions in the batch, grouped so that each group's latents stack (same shape) and fit `max_batch`."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, noise in enumerate(batch.noise):
        by_shape.setdefault(tuple(noise.shape), []).append(k)
    return [group[i : i + max_batch] for group in by_shape.values() for i in range(0, len(group), max_batch)]
