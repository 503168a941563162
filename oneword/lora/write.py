"""Write a LoRA as kohya's `networks/lora.py` does: `KEY.lora_down.weight`, `KEY.lora_up.weight` and `KEY.alpha` in
a safetensors file (fp16 by default), with kohya's `ss_*` header metadata and Stability's `modelspec.*` keys, so
A1111, ComfyUI, diffusers, kohya and the model sites read what it is."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save

from oneword.files import atomic_write
from oneword.lora.bundle import bundle_tensors
from oneword.lora.network import Lora, LoraLayer
from oneword.models.base import BaseModel
from oneword.models.export import ARCHITECTURE

BASE_MODEL_VERSION = {"sd1": "sd_v1", "sd2": "sd_v2", "sd2-v": "sd_v2", "sdxl": "sdxl_base_v1-0"}
"""kohya's `ss_base_model_version` by model kind."""


def lora_tensors(lora: Lora, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """The file's tensors: every layer's down, up and alpha (a 0-d tensor), in `dtype`, and its bundled
    embeddings' vectors (`bundle_emb.WORD.*`, float32)."""
    tensors = bundle_tensors(lora.embeddings)
    for key, layer in lora.layers.items():
        if not isinstance(layer, LoraLayer):
            raise TypeError(f"{key}: only LoRA/LoCon layers are written, not {type(layer).__name__}")
        tensors[f"{key}.lora_down.weight"] = layer.down.detach().to("cpu", dtype).contiguous()
        tensors[f"{key}.lora_up.weight"] = layer.up.detach().to("cpu", dtype).contiguous()
        tensors[f"{key}.alpha"] = torch.tensor(float(layer.alpha), dtype=dtype)
    return tensors


def addnet_hash(data: bytes) -> str:
    """kohya's `sshs_model_hash` (the Additional Networks hash A1111 names a LoRA by): SHA-256 of a safetensors
    file's bytes after its header."""
    header = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + header:]).hexdigest()


def kohya_metadata(lora: Lora, model: BaseModel, settings: dict[str, object]) -> dict[str, str]:
    """kohya's `ss_*` keys and Stability's `modelspec.*` keys for a LoRA trained on `model`.

    `settings` gives what the run used: `rank`, `alpha`, `conv_rank`, `conv_alpha`, `unet_lr`, `text_encoder_lr`,
    `steps`, `tag_frequency` (folder -> tag -> count) where known."""
    architecture, implementation = ARCHITECTURE[model.kind]
    scale = 2 ** (len(model.vae.config.block_out_channels) - 1)
    side = model.unet.config.sample_size * scale
    args = {}
    if settings.get("conv_rank"):
        args = {"conv_dim": str(settings["conv_rank"]), "conv_alpha": str(settings.get("conv_alpha"))}
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(settings.get("rank", "")),
        "ss_network_alpha": str(settings.get("alpha", "")),
        "ss_network_args": json.dumps(args) if args else "",
        "ss_base_model_version": BASE_MODEL_VERSION[model.kind],
        "ss_v2": str(model.kind in ("sd2", "sd2-v")),
        "ss_sd_model_name": model.name,
        "ss_sd_model_hash": model.short_hash,
        "ss_output_name": lora.name,
        "ss_steps": str(lora.step if lora.step is not None else settings.get("steps", 0)),
        "ss_unet_lr": str(settings.get("unet_lr", "")),
        "ss_text_encoder_lr": str(settings.get("text_encoder_lr", "")),
        "ss_tag_frequency": json.dumps(settings.get("tag_frequency", {})),
        "ss_training_comment": "trained with oneword",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{architecture}/lora",
        "modelspec.implementation": implementation,
        "modelspec.title": lora.name,
        "modelspec.resolution": f"{side}x{side}",
        "modelspec.date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "modelspec.prediction_type": "v" if model.prediction_type == "v_prediction" else "epsilon",
    }
    if lora.trigger:
        metadata["modelspec.trigger_phrase"] = lora.trigger
    return {k: v for k, v in metadata.items() if v != ""}


def save_lora(lora: Lora, path: Path, metadata: dict[str, str], dtype: torch.dtype = torch.float16) -> None:
    """Write `lora` to `path` (safetensors) atomically, with `metadata` and kohya's `sshs_model_hash`."""
    tensors = lora_tensors(lora, dtype)
    digest = addnet_hash(save(tensors))
    data = save(tensors, {**metadata, "sshs_model_hash": digest})
    atomic_write(Path(path), lambda f: f.write(data))
