"""Read a LoRA file: kohya's LoRA and LoCon layout (`KEY.lora_down.weight`, `KEY.lora_up.weight`, `KEY.alpha`),
LyCORIS's LoHa (`KEY.hada_*`) and LoKr (`KEY.lokr_*`), and diffusers/PEFT files (oneword/lora/peft.py).

A file is refused (a OnewordError naming it) when it cannot be read, holds no LoRA layer, or holds a NaN or
infinite value. A layer the file gives incompletely (half of it missing, halves of different ranks) is kept as an
`Unusable` with the reason, which the fitting step (oneword/lora/fit.py) reports and leaves out. Never unpickles
with code: safetensors files are read as tensors only, `.pt`/`.ckpt`/`.bin` files through oneword/safeload.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from oneword.errors import OnewordError
from oneword.lora.bundle import read_bundle
from oneword.lora.lycoris import (
    HADA_PARTS,
    LOKR_PARTS,
    LohaLayer,
    LokrLayer,
    TuckerLoconLayer,
    loha_layer,
    lokr_layer,
)
from oneword.lora.network import Lora, LoraLayer
from oneword.lora.peft import diffusers_layers, is_diffusers

SUFFIXES = (".safetensors", ".pt", ".ckpt", ".bin")
"""The files a LoRA folder is searched for (A1111 reads the first three; diffusers saves `.bin` too)."""
_KOHYA = ("lora_down.weight", "lora_up.weight")
_KNOWN = (*_KOHYA, "lora_mid.weight", "alpha", *HADA_PARTS, *LOKR_PARTS)


@dataclass(frozen=True)
class Unusable:
    """A layer of the file that cannot be applied, and why."""

    reason: str


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A LoRA file's tensors and safetensors header metadata; OnewordError naming the file when it cannot be read."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return _pickled_tensors(path), {}
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        raise OnewordError(f"{path}: not a readable safetensors file ({error})") from None


def _pickled_tensors(path: Path) -> dict[str, torch.Tensor]:
    from oneword.safeload import load_pickle

    data = load_pickle(path)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise OnewordError(f"{path}: not a LoRA (not a dictionary of tensors)")
    return {str(k): v for k, v in data.items()}


def kohya_layers(tensors: dict[str, torch.Tensor]) -> dict[str, object]:
    """The LoRA/LoCon, LoHa and LoKr layers of a kohya-style state dict (`lora_*.PART`), by kohya key (alpha = rank
    where a layer has none); a layer the file gives incompletely, or with parts not read here, is an `Unusable`."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        layer, _, part = key.partition(".")
        if layer.startswith("lora_") and part:
            grouped.setdefault(layer, {})[part] = tensor
    return {key: _layer(parts) for key, parts in sorted(grouped.items())}


def _layer(parts: dict[str, torch.Tensor]) -> object:
    unknown = sorted(set(parts) - set(_KNOWN))
    if unknown:
        return Unusable(f"has {', '.join(unknown)}, which oneword does not apply")
    alpha = float(parts["alpha"]) if "alpha" in parts else None
    try:
        if any(part.startswith("hada_") for part in parts):
            return loha_layer(parts, alpha)
        if any(part.startswith("lokr_") for part in parts):
            return lokr_layer(parts, alpha)
    except KeyError as missing:
        return Unusable(f"has no {missing.args[0]} weight")
    down, up = parts.get("lora_down.weight"), parts.get("lora_up.weight")
    if down is None or up is None:
        return Unusable(f"has no {'lora_down' if down is None else 'lora_up'} weight")
    if down.dim() not in (2, 4) or up.dim() != down.dim() or down.shape[0] != up.shape[1]:
        return Unusable(f"lora_down {list(down.shape)} and lora_up {list(up.shape)} do not make a layer")
    alpha = alpha if alpha is not None else float(down.shape[0])
    mid = parts.get("lora_mid.weight")
    if mid is None:
        return LoraLayer(down.float(), up.float(), alpha)
    if down.dim() != 4 or mid.dim() != 4 or tuple(mid.shape[:2]) != (down.shape[0], up.shape[1]):
        return Unusable(f"lora_mid {list(mid.shape)} does not fit lora_down {list(down.shape)}")
    return TuckerLoconLayer(down.float(), mid.float(), up.float(), alpha)


def _check_finite(tensors: dict[str, torch.Tensor], path: Path) -> None:
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise OnewordError(f"{path}: not usable: {key} holds NaN or infinite values")


def read_layout(path: Path) -> tuple[Lora, str]:
    """The LoRA of a file and its layout: `kohya` (kohya and LyCORIS keys) or `diffusers` (PEFT or older)."""
    path = Path(path)
    tensors, metadata = read_tensors(path)
    layers, layout = kohya_layers(tensors), "kohya"  # bundle_emb.* keys do not start with lora_
    if not layers and is_diffusers(tensors):
        layout = "diffusers"
        layers = {k: Unusable(v) if isinstance(v, str) else v for k, v in diffusers_layers(tensors, metadata).items()}
    if not layers:
        raise OnewordError(f"{path}: not a LoRA (no lora_down/lora_up, hada_, lokr_ or lora_A/lora_B weights)")
    _check_finite(tensors, path)
    embeddings, problems = read_bundle(tensors, metadata)
    for word, reason in problems.items():
        layers[f"bundle_emb.{word}"] = Unusable(reason)
    steps = metadata.get("ss_steps", "")
    lora = Lora(path.stem, layers, metadata, step=int(steps) if steps.isdigit() else None,
                trigger=metadata.get("modelspec.trigger_phrase") or None, embeddings=embeddings)
    return lora, layout


def read_lora(path: Path) -> Lora:
    """A LoRA file (kohya LoRA/LoCon, LyCORIS LoHa/LoKr, diffusers/PEFT) as a Lora named after its stem."""
    return read_layout(path)[0]


def lora_kind(lora: Lora, layout: str = "kohya") -> str:
    """What kind of LoRA it is, as people call them: LoRA, LoCon (3x3 convolutions too), LoHa, LoKr, or PEFT
    (a diffusers file); several joined by `+`."""
    if layout == "diffusers":
        return "PEFT"
    kinds = set()
    for layer in lora.layers.values():
        if isinstance(layer, LohaLayer):
            kinds.add("LoHa")
        elif isinstance(layer, LokrLayer):
            kinds.add("LoKr")
        elif isinstance(layer, TuckerLoconLayer):
            kinds.add("LoCon")
        elif isinstance(layer, LoraLayer):
            kinds.add("LoCon" if layer.down.dim() == 4 and layer.down.shape[-1] > 1 else "LoRA")
    if "LoCon" in kinds:
        kinds.discard("LoRA")
    return "+".join(sorted(kinds)) or "none"
