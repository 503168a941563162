"""Build a model's parts from a kind config, with random weights or with no storage at all."""

from __future__ import annotations

import contextlib
from typing import Any

import transformers
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig

from oneword.models.base import BaseModel, TextEncoder
from oneword.models.kinds import encoder_specs
from oneword.models.tokenizer import clip_tokenizer


def _model_args(section: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if not k.startswith("_")}


def build_model(
    kind: str, config: dict[str, Any], *, name: str, empty: bool = False, source=None
) -> BaseModel:
    """A BaseModel of `kind` shaped by `config`; `empty=True` puts weights on the meta device (no memory)."""
    ctx = init_empty_weights() if empty else contextlib.nullcontext()
    with ctx:
        unet = UNet2DConditionModel(**_model_args(config["unet"]))
        vae = AutoencoderKL(**_model_args(config["vae"]))
        encoders = []
        for spec in encoder_specs(config):
            cls = getattr(transformers, spec.cls)
            model = cls(CLIPTextConfig(**spec.config))
            encoders.append(TextEncoder(spec=spec, model=model, tokenizer=clip_tokenizer(spec.pad_token)))
    model = BaseModel(
        kind=kind,
        unet=unet,
        vae=vae,
        encoders=encoders,
        scheduler_config=dict(config["scheduler"]),
        name=name,
        source=source,
    )
    for module in model.modules():
        module.eval().requires_grad_(False)
    return model
