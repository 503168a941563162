"""Whether the training pictures' size suits the model, checked before anything runs or is written.

A GroupNorm needs more than one value per group: a picture so small that the UNet's deepest level is one latent
pixel, with as many groups as channels and a batch of one, would fail deep inside the first step with PyTorch's
"Expected more than 1 value per channel". Real SD models (10 or more channels a group) never reach that; small
models (the toy model, the tiny test models) do below about 24 px.
"""

from __future__ import annotations

import torch

from oneword.errors import OnewordError
from oneword.models.base import BaseModel


def check_picture_size(model: BaseModel, sizes: set[tuple[int, int]], batch: int) -> None:
    """Refuse, naming the size, pictures too small for a GroupNorm of the VAE's encoder or of the UNet."""
    problems = []
    for width, height in sorted(sizes):
        encoder = _levels(model.vae.encoder, (width, height), ceil=False)  # its downsamplers pad (0, 1): floor
        latent = encoder[-1][1]
        unet = _levels(model.unet, latent, ceil=True)  # the UNet's pad 1 on each side: ceiling halving
        if 0 in latent or not all(_enough(part, size, b) for (part, size), b in
                                  [*((level, 1) for level in encoder), *((level, batch) for level in unet)]):
            problems.append(f"{width}x{height}")
    if problems:
        raise OnewordError(f"--width/--height: pictures of {', '.join(problems)} px are too small for "
                           f"{model.name}: its deepest layers would see one value per group (give a larger size, "
                           f"or a larger --batch-size)")


def _levels(net: torch.nn.Module, size: tuple[int, int], *, ceil: bool) -> list[tuple[torch.nn.Module, tuple]]:
    """Each part of a diffusers encoder or UNet with the size it works at: the down blocks (before their
    downsampler), the mid block at the deepest size, the up blocks mirrored; the last entry is the deepest."""
    parts, sizes = [], []
    for block in net.down_blocks:
        parts.append(block)
        sizes.append(size)
        if block.downsamplers:
            width, height = size
            size = (-(-width // 2), -(-height // 2)) if ceil else (width // 2, height // 2)
    ups = list(getattr(net, "up_blocks", []))
    levels = [*zip(parts, sizes, strict=True), *zip(ups, reversed(sizes), strict=False)]
    return [*levels, (net.mid_block, size)] if net.mid_block is not None else [*levels, (torch.nn.Identity(), size)]


def _enough(part: torch.nn.Module, size: tuple[int, int], batch: int) -> bool:
    """Whether every GroupNorm of `part` gets more than one value per group at `size`."""
    return all(batch * (norm.num_channels // norm.num_groups) * size[0] * size[1] > 1
               for norm in part.modules() if isinstance(norm, torch.nn.GroupNorm))
