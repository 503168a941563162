"""The model kinds oneword knows (SD 1.x, SD 2.x, SDXL) and the configs shipped for each."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

KINDS = ("sd1", "sd2", "sd2-v", "sdxl")


@dataclass(frozen=True)
class EncoderSpec:
    """How one text encoder of a kind is built and read."""

    key: str
    """Name of the encoder in embedding files: `clip_l`, `clip_h` (SD 2.x) or `clip_g` (SDXL's second)."""
    cls: str
    """transformers class: `CLIPTextModel` or `CLIPTextModelWithProjection` (gives SDXL's pooled vector)."""
    layer: str
    """`last`: the final hidden state after the final layer norm; `penultimate`: hidden_states[-2], no norm."""
    pad_token: str
    """Token that fills a prompt up to 77: `<|endoftext|>` for CLIP ViT-L, `!` for OpenCLIP models."""
    config: dict[str, Any]
    """transformers CLIPTextConfig fields."""


@cache
def _load(kind: str) -> dict[str, Any]:
    text = resources.files("oneword.data.configs").joinpath(f"{kind}.json").read_text()
    return json.loads(text)


def kind_config(kind: str) -> dict[str, Any]:
    """The shipped config of a kind: `unet`, `vae`, `text_encoders`, `scheduler` sections (a fresh copy)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    return copy.deepcopy(_load(kind))


def encoder_specs(config: dict[str, Any]) -> list[EncoderSpec]:
    """The text encoder specs of a kind config."""
    return [
        EncoderSpec(key=e["key"], cls=e["class"], layer=e["layer"], pad_token=e["pad_token"], config=e["config"])
        for e in config["text_encoders"]
    ]
