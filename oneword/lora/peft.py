"""diffusers' LoRA files: PEFT's layout (`unet.<module>.lora_A.weight` [r, in], `lora_B.weight` [out, r];
`text_encoder.` and SDXL's `text_encoder_2.`), and diffusers' older attention-processor layout
(`unet.<block>.attn1.processor.to_q_lora.down.weight`, `text_encoder.<layer>.q_proj.lora_linear_layer.up.weight`).

Each layer is named as kohya would name it with the module path as the file gives it: `lora_unet_` + the
diffusers path (for SDXL the fitting step, oneword/lora/fit.py, maps it to kohya's SGM name), `lora_te_`, or
`lora_te1_`/`lora_te2_` when the file has a second text encoder. Alpha comes from the `lora_adapter_metadata`
header JSON diffusers writes (`unet.lora_alpha`, `unet.r`, `unet.alpha_pattern`), else from a `.alpha` key
(diffusers' conversions), else alpha = rank (scale 1, what diffusers loads such a file with). A
`lora_adapter_metadata` that is not a JSON object, or whose `lora_alpha` or `alpha_pattern` values are not numbers
within MAX_ABS, refuses the file: the strength it would be applied at is unknown.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable

import torch

from oneword.embeddings.layouts import MAX_ABS
from oneword.lora.names import clip_path
from oneword.lora.network import LoraLayer, Misfit, pair_problem, single_number

_PEFT = re.compile(r"^(.*)\.lora_([AB])\.weight$")
_OLD = re.compile(r"^(.*?)(?:\.lora_linear_layer|\.lora|_lora)\.(down|up)\.weight$")
_OLD_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)$")
_PARTS = {"unet": "unet", "text_encoder": "te", "text_encoder_2": "te2"}


class AdapterMetadataError(ValueError):
    """A `lora_adapter_metadata` header that does not say what alpha each layer has (the reason)."""


def is_diffusers(keys: Iterable[str]) -> bool:
    """Whether the keys are PEFT's (`lora_A`/`lora_B`) or diffusers' older processor layout."""
    return any(_PEFT.match(key) or _OLD.match(key) for key in keys)


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
    """The adapter settings per part from `lora_adapter_metadata` (`{"unet": {"lora_alpha": 8, ...}}`), or {}
    without one; AdapterMetadataError when it is not JSON or its alphas are not numbers."""
    if not metadata.get("lora_adapter_metadata"):
        return {}
    try:
        raw = json.loads(metadata["lora_adapter_metadata"])
    except (ValueError, RecursionError):  # not JSON, an integer of thousands of digits, nesting too deep
        raise AdapterMetadataError("lora_adapter_metadata is not JSON") from None
    if not isinstance(raw, dict):
        raise AdapterMetadataError(f"lora_adapter_metadata is {_kind(raw)}, not a JSON object")
    settings: dict[str, dict] = {}
    for key, value in raw.items():
        part, _, name = key.partition(".")
        if name == "alpha_pattern" and value is not None:
            if not isinstance(value, dict):
                raise AdapterMetadataError(f"lora_adapter_metadata: {key} is {_kind(value)}, not an object of "
                                           "module names and alphas")
            for pattern, alpha in value.items():
                _check_alpha(alpha, f"{key}[{pattern!r}]")
        elif name == "lora_alpha" and value is not None:
            _check_alpha(value, key)
        settings.setdefault(part, {})[name] = value
    return settings


def _kind(value: object) -> str:
    """What a JSON value is, as a sentence says it: `a list`, `an object`, `null`."""
    return {list: "a list", dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}")


def _check_alpha(value: object, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AdapterMetadataError(f"lora_adapter_metadata: {where} is {_kind(value)}, not a number")
    if abs(value) > MAX_ABS or not math.isfinite(value):  # abs first: a JSON integer may be too large for a float
        raise AdapterMetadataError(f"lora_adapter_metadata: {where} is {str(value)[:12]}, beyond any LoRA's alpha "
                                   f"(usable ones stay far below {MAX_ABS:g})")


def _alpha(settings: dict[str, dict], module: str, rank: int, key_alpha: torch.Tensor | None) -> float:
    part = module.partition(".")[0]
    config = settings.get(part if part in _PARTS else "unet", {})
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if module.endswith(pattern):
            return float(value)
    if config.get("lora_alpha") is not None:
        return float(config["lora_alpha"])
    return single_number(key_alpha, f"{module}.alpha") if key_alpha is not None else float(rank)


def diffusers_layers(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, object]:
    """The layers of a diffusers/PEFT state dict by kohya-style key; a layer missing a half, or whose halves make
    none, is a `str` (why); AdapterMetadataError for a `lora_adapter_metadata` that gives no usable alphas."""
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
        down, up = parts["down"], parts["up"]
        problem = pair_problem(down, up, ("lora_A (down)", "lora_B (up)"))
        if problem:
            layers[key] = problem
            continue
        try:
            alpha = _alpha(settings, module, down.shape[0], tensors.get(f"{module}.alpha"))
        except Misfit as misfit:
            layers[key] = str(misfit)
            continue
        layers[key] = LoraLayer(down.float(), up.float(), alpha)
    return layers
