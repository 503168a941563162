"""Tiny models with random weights and the real architectures, built on demand (tests, quick runs)."""

from __future__ import annotations

from typing import Any

import torch

from oneword.models.base import BaseModel
from oneword.models.build import build_model
from oneword.models.kinds import kind_config

TINY_NAMES = {"tiny-sd1": "sd1", "tiny-sd2": "sd2", "tiny-sd2-v": "sd2-v", "tiny-sdxl": "sdxl"}

# Small widths that keep every rule the loaders rely on: UNet channels multiples of 32 (32 norm groups),
# SD 1.x with 8 heads, SD 2.x/SDXL with 64-channel heads, text heads of 64 channels, a 4-block VAE (8x).
_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 1, "num_hidden_layers": 2}
_VAE = {"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1, "sample_size": 64}


def tiny_config(kind: str) -> dict[str, Any]:
    """The kind's shipped config with tiny widths and depths."""
    config = kind_config(kind)
    config["vae"].update(_VAE)
    unet = config["unet"]
    unet.update({"layers_per_block": 1, "sample_size": 8})
    if kind == "sd1":
        unet.update({"block_out_channels": [32, 64], "cross_attention_dim": 64,
                     "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                     "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]})
        config["text_encoders"][0]["config"].update(_TEXT, projection_dim=64)
    elif kind in ("sd2", "sd2-v"):
        unet.update({"block_out_channels": [64, 128], "attention_head_dim": [1, 2], "cross_attention_dim": 64,
                     "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                     "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]})
        config["text_encoders"][0]["config"].update(_TEXT, projection_dim=32)
    else:
        # SDXL: CLIP-L width 64 and bigG width 128 give a 192-wide context; the pooled vector (128) and six
        # size/crop numbers of 8 channels each feed the added embedding: 128 + 6 * 8 = 176.
        unet.update({"block_out_channels": [64, 128], "attention_head_dim": [1, 2], "cross_attention_dim": 192,
                     "transformer_layers_per_block": [1, 2], "addition_time_embed_dim": 8,
                     "projection_class_embeddings_input_dim": 176,
                     "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
                     "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"]})
        config["text_encoders"][0]["config"].update(_TEXT, projection_dim=64)
        config["text_encoders"][1]["config"].update(
            _TEXT, hidden_size=128, intermediate_size=256, num_attention_heads=2, projection_dim=128
        )
    return config


def build_tiny(kind: str = "sd1", seed: int = 0, name: str | None = None) -> BaseModel:
    """A tiny model of `kind` with random weights drawn from `seed` (the same seed gives the same weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(kind, tiny_config(kind), name=name or f"tiny-{kind}")
