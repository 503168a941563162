"""A LoRA as oneword holds it: its layers by kohya's name, each able to say how it changes its layer's output.

Whatever file it was read from (kohya LoRA or LoCon, diffusers/PEFT, LyCORIS LoHa or LoKr), a LoRA is a `Lora`: a
name, its layers and the file's header metadata. A layer gives its weight change (`delta`, the layer's weight shape)
and its effect on an input (`forward`: what it adds to the frozen layer's output at multiplier 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F


class Misfit(ValueError):
    """Parts of a layer that make no weight change (the reason, naming them), found from their shapes alone."""


def single_number(tensor: torch.Tensor, name: str) -> float:
    """A one-number tensor (a layer's `alpha`) as a float; Misfit when it holds more or fewer numbers."""
    if tensor.numel() != 1:
        raise Misfit(f"{name} has shape {list(tensor.shape)}, not one number")
    return float(tensor.reshape(()).float())


def pair_problem(down: torch.Tensor, up: torch.Tensor, names: tuple[str, str] = ("lora_down", "lora_up")) -> str:
    """Why `down` and `up` make no LoRA layer (empty, of other dimensions, ranks that differ, an up that is not
    1x1), or "" when they make one."""
    fits = (down.dim() in (2, 4) and up.dim() == down.dim() and 0 not in down.shape and 0 not in up.shape
            and down.shape[0] == up.shape[1] and tuple(up.shape[2:]) in ((), (1, 1)))
    return "" if fits else f"{names[0]} {list(down.shape)} and {names[1]} {list(up.shape)} do not make a layer"


STEP_DIGITS = 20
"""Longest `ss_steps` read as a number (a step count has a handful of digits; Python refuses to convert thousands)."""


def header_step(metadata: dict[str, str]) -> int | None:
    """kohya's `ss_steps` header entry as a number; None when absent, or not a plain count of at most STEP_DIGITS
    ASCII digits (the step is only shown, so a garbled one is left unknown, as an embedding's is)."""
    text = metadata.get("ss_steps", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= STEP_DIGITS else None


class LayerChange(Protocol):
    """How one layer changes its module's weight."""

    @property
    def shape(self) -> tuple[int, ...]:
        """The weight change's shape, known from the parts' shapes without computing it."""
        ...

    def delta(self) -> torch.Tensor:
        """The weight change at multiplier 1, in the module's weight shape (float32)."""
        ...

    def forward(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """What the change adds to `module(x)` at multiplier 1, in `x`'s dtype."""
        ...


@dataclass
class LoraLayer:
    """kohya's LoRA (and LoCon) layer: W' = W + (alpha / rank) * up @ down."""

    down: torch.Tensor
    """[rank, in] for a Linear, [rank, in, kh, kw] for a convolution."""
    up: torch.Tensor
    """[out, rank] for a Linear, [out, rank, 1, 1] for a convolution."""
    alpha: float

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def shape(self) -> tuple[int, ...]:
        """[out, in], or [out, in, kh, kw] for a convolution."""
        return (self.up.shape[0], *self.down.shape[1:])

    def delta(self) -> torch.Tensor:
        down, up = self.down.float(), self.up.float()
        if down.dim() == 2:
            return self.scale * (up @ down)
        return self.scale * (up.flatten(1) @ down.flatten(1)).reshape(up.shape[0], *down.shape[1:])

    def forward(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        down, up = self.down.to(x), self.up.to(x)
        if isinstance(module, torch.nn.Conv2d):
            hidden = F.conv2d(x, down, None, module.stride, module.padding, module.dilation)
            return F.conv2d(hidden, up) * self.scale
        return F.linear(F.linear(x, down), up) * self.scale


@dataclass
class Lora:
    """A LoRA: its layers by kohya's name (`lora_unet_...`, `lora_te_...`) and its file's header metadata.

    A snapshot (oneword/snapshot.py) of a LoRA run, and what `<lora:NAME:W>` applies."""

    name: str
    layers: dict[str, Any]
    """kohya key -> a LayerChange (LoraLayer, or a LyCORIS layer read from a file)."""
    metadata: dict[str, str] = field(default_factory=dict)
    """The safetensors header's `__metadata__` (kohya's `ss_*`, `modelspec.*`)."""
    step: int | None = None
    trigger: str | None = None
    """The word its training prompts held (`modelspec.trigger_phrase`), or None."""
    embeddings: dict[str, Any] = field(default_factory=dict)
    """Word -> the Embedding bundled in the file (`bundle_emb.WORD.*`, oneword/lora/bundle.py), which a prompt
    with its tag may use."""

    @property
    def trigger_word(self) -> str | None:
        """The word a prompt needs to call it up (the trigger phrase), or None when it acts on every prompt."""
        return self.trigger

    def token_vectors(self) -> dict:
        """Its bundled embeddings by word ({} for a plain LoRA, which changes the layers, not the prompt's tokens)."""
        return dict(self.embeddings)

    def network_modules(self) -> list[tuple[Any, float]]:
        """Itself, at strength 1."""
        return [(self, 1.0)]
