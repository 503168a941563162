"""Fit a LoRA to a model: which of its layers has a place in the model, and changes a weight of the place's shape.

A layer is found by kohya's name (oneword/lora/names.py); on SDXL also by its diffusers path (`lora_unet_down_
blocks_1_attentions_0_...`, what PEFT files and some trainers give), and an SDXL file's `lora_te_` layers stand
for `lora_te1_` as ComfyUI reads them. A layer with no place, or whose weight change has another shape than its
module's weight, is left out with the reason, gathered into one line per reason naming the file. Shapes are
compared from the layer's parts alone: no weight change is computed for a layer that does not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from oneword.lora.lycoris import TuckerLoconLayer
from oneword.lora.names import UNET_PREFIX, Place, places
from oneword.lora.network import Lora, LoraLayer
from oneword.lora.read import Unusable
from oneword.models.base import BaseModel


@dataclass
class Fitted:
    """The layers of a LoRA that apply to a model, each with its place, and what was left out."""

    layers: list[tuple[Place, object]] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    """Reason -> the keys left out for it."""

    def notes(self, name: str) -> list[str]:
        """One line per reason: `lora NAME: 3 layers skipped: no such layer in the model (e.g. KEY)`."""
        lines = []
        for reason, keys in self.skipped.items():
            count = f"{len(keys)} layer{'s' if len(keys) != 1 else ''}"
            lines.append(f"lora {name}: {count} skipped: {reason} (e.g. {keys[0]})")
        return lines


def lookup(model: BaseModel) -> dict[str, Place]:
    """Every name a layer of a LoRA file may give for a place of `model`: kohya's, and on SDXL also the UNet's
    diffusers paths and `lora_te_` for the first text encoder."""
    found = places(model)
    table = dict(found)
    if model.is_sdxl:
        for key, place in found.items():
            if place.part == "unet":
                table.setdefault(UNET_PREFIX + place.path.replace(".", "_"), place)
            elif key.startswith("lora_te1_"):
                table.setdefault("lora_te_" + key.removeprefix("lora_te1_"), place)
    return table


def shaped(layer: object, module: torch.nn.Module) -> tuple[object | None, str]:
    """The layer made to fit `module` (a Linear's LoRA given as 1x1 convolutions and back), or (None, why not)."""
    weight = module.weight
    if isinstance(layer, LoraLayer):
        down, up = layer.down, layer.up
        if isinstance(module, torch.nn.Linear) and down.dim() == 4 and down.shape[2:] == (1, 1):
            down, up = down.flatten(1), up.flatten(1)
        elif isinstance(module, torch.nn.Conv2d) and down.dim() == 2:
            down, up = down[:, :, None, None], up[:, :, None, None]
        want = (weight.shape[1], *weight.shape[2:])
        if up.shape[0] != weight.shape[0] or tuple(down.shape[1:]) != tuple(want):
            return None, f"{_shape(up.shape[0], *down.shape[1:])}, the layer {_shape(*weight.shape)}"
        return (layer if down is layer.down else LoraLayer(down, up, layer.alpha)), ""
    shape = tuple(layer.shape)  # from the factors' shapes: no weight change is computed before it is known to fit
    exact = isinstance(layer, TuckerLoconLayer)  # its core runs as a convolution at the module's kernel size
    if shape[0] != weight.shape[0] or math.prod(shape) != weight.numel() or (exact and shape != weight.shape):
        return None, f"{_shape(*shape)}, the layer {_shape(*weight.shape)}"
    return layer, ""


def _shape(*dims: int) -> str:
    return "x".join(str(d) for d in dims)


def fit(lora: Lora, model: BaseModel, table: dict[str, Place] | None = None) -> Fitted:
    """The layers of `lora` that apply to `model` (`table` from `lookup(model)`, made once for many LoRAs)."""
    table = lookup(model) if table is None else table
    fitted = Fitted()
    taken: set[str] = set()
    for key, layer in lora.layers.items():
        place = table.get(key)
        if isinstance(layer, Unusable):
            fitted.skipped.setdefault(layer.reason, []).append(key)
        elif place is None:
            fitted.skipped.setdefault(f"no such layer in {model.name}", []).append(key)
        elif place.key in taken:
            fitted.skipped.setdefault("a second layer for the same module", []).append(key)
        else:
            made, why = shaped(layer, place.module)
            if made is None:
                fitted.skipped.setdefault("its shape does not fit the model's layer", []).append(f"{key}: {why}")
            else:
                taken.add(place.key)
                fitted.layers.append((place, made))
    return fitted
