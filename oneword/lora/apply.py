"""Apply LoRAs to a model for the length of a block: several at once, each with a text-encoder and a UNet
multiplier (A1111's `<lora:NAME:TE:UNET>`).

Each fitted layer is a forward hook on its module that adds `multiplier * layer.forward(module, x)` to the
module's output; leaving the block removes the hooks. Hooks rather than merged weights: the weights are never
written, so leaving restores them exactly whatever their dtype (W + d - d is not W in fp16), no copy of every
changed weight is kept (a LoCon touches most of an SDXL UNet), LoRAs of different multipliers add up without
order effects, and a multiplier of 0 registers nothing, so the outputs are the model's own, bit for bit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from oneword.lora.fit import fit, lookup
from oneword.lora.lycoris import TuckerLoconLayer, apply_weight
from oneword.lora.network import Lora, LoraLayer
from oneword.models.base import BaseModel

Active = Sequence[tuple[Lora, float, float]]
"""LoRAs in the order they apply, each with its text-encoder and its UNet multiplier."""
PARTS = ("te", "unet")


@dataclass
class FullChange:
    """A layer's whole weight change, computed once, on the module's device and in its dtype (LoHa, LoKr)."""

    delta: torch.Tensor

    def forward(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return apply_weight(module, x, self.delta)


def _placed(layer: object, weight: torch.Tensor) -> object:
    """A layer ready for its module: its tensors on the module's device and in its dtype, moved once for the block
    rather than at every call (a LoHa's or LoKr's whole weight change computed once, dropped with the hooks)."""
    def moved(t: torch.Tensor) -> torch.Tensor:
        return t.to(weight.device, weight.dtype)

    if isinstance(layer, LoraLayer):
        return LoraLayer(moved(layer.down), moved(layer.up), layer.alpha)
    if isinstance(layer, TuckerLoconLayer):
        return TuckerLoconLayer(moved(layer.down), moved(layer.mid), moved(layer.up), layer.alpha)
    return FullChange(moved(layer.delta()))


def _hook(layer: object, multiplier: float) -> Callable:
    def add_change(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return output + multiplier * layer.forward(module, args[0])

    return add_change


@contextlib.contextmanager
def loras_applied(model: BaseModel, active: Active, parts: Sequence[str] = PARTS) -> Iterator[list[str]]:
    """Within the block, the `parts` (`te`, `unet`) of `model` carry every LoRA of `active` at its multipliers.

    Yields the notes on what was left out (one line per LoRA and reason: layers with no place in the model or of
    another shape, layers the file gives incompletely); nothing left out stops the block."""
    table = lookup(model)
    notes: list[str] = []
    handles = []
    try:
        for lora, te, unet in active:
            fitted = fit(lora, model, table)
            notes += fitted.notes(lora.name)
            for place, layer in fitted.layers:
                multiplier = te if place.part == "te" else unet
                if place.part in parts and multiplier != 0:
                    layer = _placed(layer, place.module.weight)
                    handles.append(place.module.register_forward_hook(_hook(layer, float(multiplier))))
        yield notes
    finally:
        for handle in handles:
            handle.remove()
