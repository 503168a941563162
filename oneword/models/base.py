"""A loaded base model: its parts, its kind, and the pipeline that draws with it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from oneword.models.kinds import EncoderSpec


@dataclass
class TextEncoder:
    """One text encoder with its tokenizer and the way its output is read."""

    spec: EncoderSpec
    model: CLIPTextModel
    tokenizer: CLIPTokenizer

    @property
    def width(self) -> int:
        """Width of a token vector (768 for CLIP ViT-L, 1024 ViT-H, 1280 ViT-bigG)."""
        return self.model.config.hidden_size


@dataclass
class BaseModel:
    """A Stable Diffusion model as oneword uses it, whatever file it came from."""

    kind: str
    """`sd1`, `sd2`, `sd2-v` or `sdxl`."""
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    encoders: list[TextEncoder]
    scheduler_config: dict[str, Any]
    name: str
    """What A1111 calls the checkpoint name: the file or folder stem."""
    source: Path | None = None
    _hash: str | None = field(default=None, repr=False)

    @property
    def is_sdxl(self) -> bool:
        """Whether the model has SDXL's two text encoders and size conditioning."""
        return self.kind == "sdxl"

    @property
    def prediction_type(self) -> str:
        """`epsilon` or `v_prediction`, as the scheduler config says."""
        return self.scheduler_config.get("prediction_type", "epsilon")

    @property
    def short_hash(self) -> str:
        """A1111's short model hash: the first 10 hex digits of the file's SHA-256 (the UNet weights for folders)."""
        if self._hash is None:
            self._hash = _short_hash(self.source) if self.source is not None else "0000000000"
        return self._hash

    @property
    def device(self) -> torch.device:
        """Device of the UNet."""
        return self.unet.device

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> BaseModel:
        """Move every part to a device (and dtype), in place; returns self."""
        for module in [self.unet, self.vae, *(e.model for e in self.encoders)]:
            module.to(device=device, dtype=dtype)
        return self

    def modules(self) -> list[torch.nn.Module]:
        """The UNet, VAE and text encoders."""
        return [self.unet, self.vae, *(e.model for e in self.encoders)]


def _short_hash(path: Path) -> str:
    if path.is_dir():
        candidates = sorted((path / "unet").glob("*.safetensors")) + sorted((path / "unet").glob("*.bin"))
        if not candidates:
            return "0000000000"
        path = candidates[0]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:10]
