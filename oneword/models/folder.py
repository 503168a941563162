"""Diffusers folders (`model_index.json` beside `unet/`, `vae/`, `text_encoder/` ...): read and write."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import torch
import transformers
from diffusers import AutoencoderKL, UNet2DConditionModel

from oneword.errors import OnewordError, first_line
from oneword.models.base import BaseModel, TextEncoder
from oneword.models.finite import non_finite_problem
from oneword.models.kinds import encoder_specs, kind_config
from oneword.models.tokenizer import clip_tokenizer
from oneword.safeload import pickle_refusal

_ENCODER_FOLDERS = ("text_encoder", "text_encoder_2")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise OnewordError(f"{path}: cannot read ({e})") from None


def folder_kind(folder: Path) -> str:
    """The kind of a diffusers folder, from its pipeline class, text encoder and scheduler configs."""
    index = _read_json(folder / "model_index.json")
    if "text_encoder_2" in index or "XL" in str(index.get("_class_name", "")):
        return "sdxl"
    text = _read_json(folder / "text_encoder" / "config.json")
    if text.get("hidden_act") != "gelu":  # CLIP ViT-L uses quick_gelu, OpenCLIP models gelu
        return "sd1"
    scheduler = _read_json(folder / "scheduler" / "scheduler_config.json")
    return "sd2-v" if scheduler.get("prediction_type") == "v_prediction" else "sd2"


def load_diffusers_folder(folder: Path, prediction_type: str | None = None) -> BaseModel:
    """Load a diffusers folder from local files only."""
    kind = folder_kind(folder)
    specs = encoder_specs(kind_config(kind))
    scheduler = _read_json(folder / "scheduler" / "scheduler_config.json")
    if prediction_type:
        scheduler["prediction_type"] = prediction_type
    part = "unet"
    try:
        unet = UNet2DConditionModel.from_pretrained(folder / part, local_files_only=True)
        part = "vae"
        vae = AutoencoderKL.from_pretrained(folder / part, local_files_only=True)
        encoders = []
        for spec, part in zip(specs, _ENCODER_FOLDERS):
            cls = getattr(transformers, spec.cls)
            model = cls.from_pretrained(folder / part, local_files_only=True)
            spec = replace(spec, config=model.config.to_dict())
            encoders.append(TextEncoder(spec=spec, model=model, tokenizer=clip_tokenizer(spec.pad_token)))
    except (OSError, ValueError, pickle.UnpicklingError) as e:
        refused = pickle_refusal(_pickle_file(folder / part), e)
        if refused is not None:
            raise refused from None
        raise OnewordError(f"{folder}: not a loadable diffusers folder ({first_line(e)})") from None
    model = BaseModel(kind=kind, unet=unet, vae=vae, encoders=encoders, scheduler_config=scheduler,
                      name=folder.name, source=folder)
    for part, module in zip(("unet", "vae", *_ENCODER_FOLDERS), model.modules()):
        module.eval().requires_grad_(False)
        _own_storage(module)
        for key, tensor in module.state_dict().items():
            problem = non_finite_problem(key, tensor)
            if problem:
                raise OnewordError(f"{folder / part}: {problem}")
    return model


def _pickle_file(part: Path) -> Path:
    """The pickle weights file of a component folder (`diffusion_pytorch_model.bin`), or the folder when it has
    several or none."""
    found = sorted(part.glob("*.bin"))
    return found[0] if len(found) == 1 else part


def _own_storage(module: torch.nn.Module) -> None:
    # from_pretrained leaves weights memory-mapped at the file's unaligned offsets, where CPU kernels round
    # differently (about 1e-6): copied, a folder draws exactly what the same weights in a single file draw.
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            tensor.data = tensor.data.clone()


def save_diffusers_folder(model: BaseModel, folder: Path) -> None:
    """Write `model` as a diffusers folder with safetensors weights (loads in diffusers' from_pretrained)."""
    from oneword.models.pipeline import make_pipeline

    make_pipeline(model).save_pretrained(folder, safe_serialization=True)
