"""The training images: read once, captioned, resized, encoded to latents once, and drawn in seeded batches."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from oneword.errors import OnewordError
from oneword.models.base import BaseModel
from oneword.prep.images import source_files
from oneword.train.templates import caption_from_name

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class TrainingImage:
    """One picture as training sees it."""

    path: Path
    caption: str
    """The `.txt` beside it, else the file name without its leading index (A1111's [filewords])."""
    pixels: torch.Tensor
    """(3, H, W) float32 in [-1, 1]."""
    alpha: torch.Tensor | None
    """(1, H, W) float32 in [0, 1] when transparency is used as a loss weight, else None."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.pixels.shape[2], self.pixels.shape[1]


@dataclass
class Dataset:
    """The images, and the files that were skipped with the reason."""

    images: list[TrainingImage]
    skipped: list[str]


def data_problem(folder: Path) -> str | None:
    """Why `folder` cannot be --data (None when it can): missing, or without a picture (read before a model loads)."""
    if not Path(folder).is_dir():
        return f"--data {folder}: no such folder"
    if not source_files(Path(folder), IMAGE_SUFFIXES):
        return f"--data {folder}: no images in it ({', '.join(IMAGE_SUFFIXES)})"
    return None


def read_dataset(
    folder: Path, size: tuple[int, int] | None, *, alpha_weight: bool = False
) -> Dataset:
    """Read every image of `folder`, resized to `size` (width, height), or kept (rounded down to multiples of 8).

    A folder that is missing, empty or without one readable image is an error naming it; single unreadable
    files are skipped and listed.
    """
    folder = Path(folder)
    problem = data_problem(folder)
    if problem:
        raise OnewordError(problem)
    files = source_files(folder, IMAGE_SUFFIXES)
    images, skipped = [], []
    for path in files:
        try:
            images.append(_read_image(path, size, alpha_weight))
        except (OSError, UnidentifiedImageError, ValueError) as error:
            skipped.append(f"{path.name}: {error}")
    if not images:
        raise OnewordError(f"--data {folder}: none of its {len(files)} images can be read ({skipped[0]})")
    return Dataset(images, skipped)


def _read_image(path: Path, size: tuple[int, int] | None, alpha_weight: bool) -> TrainingImage:
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        image.load()
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if alpha_weight and has_alpha else "RGB")
    if size is None:
        size = (image.width // 8 * 8, image.height // 8 * 8)
        if 0 in size:
            raise ValueError(f"{image.width}x{image.height} is smaller than 8 pixels")
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.float32) / 255.0  # (H, W, 3 or 4)
    pixels = torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1) * 2.0 - 1.0
    alpha = torch.from_numpy(array[..., 3:].copy()).permute(2, 0, 1) if array.shape[2] == 4 else None
    return TrainingImage(path=path, caption=caption_of(path), pixels=pixels.contiguous(), alpha=alpha)


def caption_of(path: Path) -> str:
    """An image's caption: its `.txt` file beside it, else the words of its file name (A1111's rule)."""
    sidecar = path.with_suffix(".txt")
    return sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else caption_from_name(path)


@dataclass
class LatentCache:
    """Each image's posterior, encoded once: the VAE does no work during training."""

    mean: list[torch.Tensor]
    """Per image (4, h, w), scaled by the VAE's scaling factor."""
    std: list[torch.Tensor]
    """Per image (4, h, w), scaled the same way."""
    weight: list[torch.Tensor | None]
    """Per image (1, h, w) loss weight from the alpha channel, mean 1, or None."""
    mode: str

    def latent(self, index: int, generator: torch.Generator) -> torch.Tensor:
        """The latent of image `index` for one use: a fresh posterior sample in `random` mode."""
        if self.mode != "random":
            return self.mean[index]
        noise = torch.randn(self.mean[index].shape, generator=generator).to(self.mean[index])
        return self.mean[index] + self.std[index] * noise


@torch.no_grad()
def cache_latents(model: BaseModel, images: list[TrainingImage], mode: str, seed: int) -> LatentCache:
    """Encode every image once (in float32, which keeps half-precision VAEs from overflowing)."""
    vae = model.vae
    dtype = vae.dtype
    vae.float()
    factor = vae.config.scaling_factor
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    generator = torch.Generator().manual_seed(seed)
    means, stds, weights = [], [], []
    try:
        for item in images:
            posterior = vae.encode(item.pixels.unsqueeze(0).to(vae.device)).latent_dist
            mean = ((posterior.mean - shift) * factor)[0]
            std = (posterior.std * factor)[0]
            if mode == "once":
                noise = torch.randn(mean.shape, generator=generator).to(mean)
                mean = mean + std * noise
            means.append(mean)
            stds.append(std)
            weights.append(_latent_weight(item.alpha, mean.shape[-2:]) if item.alpha is not None else None)
    finally:
        vae.to(dtype)
    return LatentCache(mean=means, std=stds, weight=weights, mode=mode)


def _latent_weight(alpha: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    weight = torch.nn.functional.interpolate(alpha.unsqueeze(0), size=tuple(size), mode="area")[0]  # (1, h, w)
    mean = weight.mean()
    return weight / mean if mean > 0 else torch.ones_like(weight)


def epoch_batches(sizes: list[tuple[int, int]], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch: images shuffled from (seed, epoch), grouped by size, full batches only.

    A size group smaller than the batch gives one smaller batch. The same seed and epoch give the same batches,
    so a resumed run draws what an uninterrupted one would.
    """
    rng = random.Random(f"{seed}-epoch-{epoch}")
    groups: dict[tuple[int, int], list[int]] = {}
    for index, size in enumerate(sizes):
        groups.setdefault(size, []).append(index)
    batches = []
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        count = max(1, len(members) // batch_size)
        batches.extend(members[i * batch_size : (i + 1) * batch_size] for i in range(count))
    rng.shuffle(batches)
    return batches
