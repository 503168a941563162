"""Read a LoRA file: kohya's LoRA and LoCon layout (`KEY.lora_down.weight`, `KEY.lora_up.weight`, `KEY.alpha`).

Never unpickles with code: safetensors files are read as tensors only."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from oneword.errors import OnewordError
from oneword.lora.network import Lora, LoraLayer

_PARTS = (".lora_down.weight", ".lora_up.weight", ".alpha")


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors and header metadata; OnewordError naming the file when it cannot be read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        raise OnewordError(f"{path}: not a readable safetensors file ({error})") from None


def kohya_layers(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, LoraLayer]:
    """The LoRA/LoCon layers of a kohya state dict, by kohya key (alpha = rank where a layer has none)."""
    keys = sorted({key.removesuffix(part) for key in tensors for part in _PARTS if key.endswith(part)})
    layers = {}
    for key in keys:
        down, up = tensors.get(f"{key}.lora_down.weight"), tensors.get(f"{key}.lora_up.weight")
        if down is None or up is None:
            raise OnewordError(f"{path}: layer {key} has no {'lora_down' if down is None else 'lora_up'} weight")
        alpha = tensors.get(f"{key}.alpha")
        layers[key] = LoraLayer(down.float(), up.float(), float(alpha) if alpha is not None else float(down.shape[0]))
    return layers


def read_lora(path: Path) -> Lora:
    """A kohya LoRA or LoCon safetensors file as a Lora named after its stem."""
    path = Path(path)
    tensors, metadata = read_tensors(path)
    steps = metadata.get("ss_steps", "")
    return Lora(path.stem, kohya_layers(tensors, path), metadata, step=int(steps) if steps.isdigit() else None,
                trigger=metadata.get("modelspec.trigger_phrase") or None)
