"""Where and in what precision a model runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from oneword.errors import OnewordError
from oneword.models.base import BaseModel

DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: the GPU when there is one, else the CPU."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise OnewordError(f"--device: unknown device {name!r}; use auto, cpu or cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OnewordError(f"--device {name}: no CUDA device is available")
    return torch.device(name)


def place(model: BaseModel, device: torch.device) -> BaseModel:
    """Move the model for inference: fp16 on a GPU, fp32 on the CPU (where half precision is slow or missing)."""
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    return model.to(device, dtype)


@contextmanager
def vae_beside_unet(model: BaseModel) -> Iterator[None]:
    """The VAE on the UNet's device for the duration (training keeps it on the CPU), then back where it was."""
    vae_device = model.vae.device
    model.vae.to(model.unet.device)
    try:
        yield
    finally:
        model.vae.to(vae_device)
