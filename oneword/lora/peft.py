"""diffusers' LoRA files: PEFT's layout (`unet.<module>.lora_A.weight` [r, in], `lora_B.weight` [out, r];
`text_encoder.` and SDXL's `text_encoder_2.`), and diffusers' older attention-processor layout
(`unet.<block>.attn1.processor.to_q_lora.down.weight`, `text_encoder.<layer>.q_proj.lora_linear_layer.up.weight`).

Each layer is named as kohya would name it with the module path as the file gives it: `lora_unet_` + the
diffusers path (for SDXL the fitting step, oneword/lora/fit.py, maps it to kohya's SGM name), `lora_te_`, or
`lora_te1_`/`lora_te2_` when the file has a second text encoder. Alpha comes from the `lora_adapter_metadata`
header JSON diffusers writes (`unet.lora_alpha`, `unet.r`, `unet.alpha_pattern`), else from a `.alpha` key
(diffusers' conversions), else alpha = rank (scale 1, what diffusers loads such a file with).
"""

from __future__ import annotations

import json
import re

import torch

from oneword.lora.names import clip_path
from oneword.lora.network import LoraLayer

_PEFT = re.compile(r"^(.*)\.lora_([AB])\.weight$")
_OLD = re.compile(r"^(.*?)(?:\.lora_linear_layer|\.lora|_lora)\.(down|up)\.weight$")
_OLD_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)$")
_PARTS = {"unet": "unet", "text_encoder": "te", "text_encoder_2": "te2"}


def is_diffusers(tensors: dict[str, torch.Tensor]) -> bool:
    """Whether the keys are PEFT's (`lora_A`/`lora_B`) or diffusers' older processor layout."""
    return any(_PEFT.match(key) or _OLD.match(key) for key in tensors)


def _module_path(key: str) -> str:
    """The module path of an old processor key (`attn1.processor.to_out` -> `attn1.to_out.0`)."""
    found = _OLD_PROCESSOR.search(key)
    if not found:
        return key
    name = found.group(1)
    return key[:found.start()] + f".{name}" + (".0" if name == "to_out" else "")


def kohya_key(module: str, two_encoders: bool) -> str | None:
    """kohya's name for a diffusers module path (`unet.down_blocks.0...`), or None for a part it does not know."""
    part, _, path = module.partition(".")
    if part not in _PARTS:  # the oldest diffusers files name UNet modules without a prefix
        part, path = "unet", module
    if part == "unet":
        return "lora_unet_" + path.replace(".", "_")
    prefix = {"te": "lora_te1_" if two_encoders else "lora_te_", "te2": "lora_te2_"}[_PARTS[part]]
    return prefix + clip_path(path).replace(".", "_")


def _alphas(metadata: dict[str, str]) -> dict[str, dict]:
    """The adapter settings per part from `lora_adapter_metadata` (`{"unet": {"lora_alpha": 8, ...}}`), or {}."""
    try:
        raw = json.loads(metadata.get("lora_adapter_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    settings: dict[str, dict] = {}
    if isinstance(raw, dict):
        for key, value in raw.items():
            part, _, name = key.partition(".")
            settings.setdefault(part, {})[name] = value
    return settings


def _alpha(settings: dict[str, dict], module: str, rank: int, key_alpha: torch.Tensor | None) -> float:
    part = module.partition(".")[0]
    config = settings.get(part if part in _PARTS else "unet", {})
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if module.endswith(pattern):
            return float(value)
    if config.get("lora_alpha") is not None:
        return float(config["lora_alpha"])
    return float(key_alpha) if key_alpha is not None else float(rank)


def diffusers_layers(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, object]:
    """The layers of a diffusers/PEFT state dict by kohya-style key; a layer missing a half is a `str` (why)."""
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        found = _PEFT.match(key) or _OLD.match(key)
        if found:
            side = {"A": "down", "B": "up"}.get(found.group(2), found.group(2))
            halves.setdefault(_module_path(found.group(1)), {})[side] = tensor
    two_encoders = any(module.startswith("text_encoder_2.") for module in halves)
    settings = _alphas(metadata)
    layers: dict[str, object] = {}
    for module, parts in sorted(halves.items()):
        key = kohya_key(module, two_encoders)
        if "down" not in parts or "up" not in parts:
            layers[key] = f"has no {'lora_A (down)' if 'down' not in parts else 'lora_B (up)'} weight"
            continue
        alpha = _alpha(settings, module, parts["down"].shape[0], tensors.get(f"{module}.alpha"))
        layers[key] = LoraLayer(parts["down"].float(), parts["up"].float(), alpha)
    return layers
