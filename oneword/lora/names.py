"""Where a LoRA acts: every layer of a model a LoRA file may change, under the name kohya's `networks/lora.py` gives it.

kohya names a layer by a prefix and its module path with dots as underscores: `lora_unet_` + the UNet's diffusers path
for SD 1.x/2.x (`lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q`), the original SGM path for
SDXL's UNet (`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`), `lora_te_` + the text encoder's
transformers path (`lora_te_text_model_encoder_layers_0_self_attn_q_proj`), SDXL `lora_te1_` (CLIP-L) and
`lora_te2_` (bigG).

Targets, as kohya picks them: `attn` the attention projections of the UNet's transformer blocks (attn1, attn2: to_q,
to_k, to_v, to_out.0) and of the text encoders (q, k, v, out_proj); `attn-mlp` every Linear and 1x1 conv of the UNet's
transformer blocks (adding ff.net.0.proj, ff.net.2, proj_in, proj_out) and the text encoders' MLP (fc1, fc2), kohya's
default; `conv` adds every layer of the ResNet blocks, down- and upsamplers (kohya's LoCon: its 3x3 convolutions
at the conv rank, its Linear and 1x1 layers at the rank).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from oneword.models.export import unet_key

if TYPE_CHECKING:  # annotations only: the file readers that import this module load no diffusers
    from oneword.models.base import BaseModel

TARGETS = ("attn", "attn-mlp", "conv")
"""The `--targets` choices, each adding layers to the one before."""
UNET_PREFIX = "lora_unet_"

_ATTENTION = re.compile(r"\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$")
_TRANSFORMER = re.compile(r"(^|\.)attentions\.\d+\.")
_RESNET = re.compile(r"(^|\.)(resnets\.\d+|downsamplers\.0|upsamplers\.0)\.")
_TE_ATTENTION = re.compile(r"\.self_attn\.(q_proj|k_proj|v_proj|out_proj)$")
_TE_MLP = re.compile(r"\.mlp\.(fc1|fc2)$")


@dataclass(frozen=True)
class Place:
    """One layer a LoRA may change."""

    key: str
    """kohya's name of the layer (`lora_unet_...`, `lora_te_...`)."""
    part: str
    """`unet` or `te` (any text encoder): which weight of `<lora:NAME:TE:UNET>` applies."""
    path: str
    """The module's path in its network (diffusers' UNet or transformers' CLIP naming)."""
    module: torch.nn.Linear | torch.nn.Conv2d

    @property
    def is_3x3(self) -> bool:
        """A convolution wider than 1x1 (LoCon's conv rank applies)."""
        return isinstance(self.module, torch.nn.Conv2d) and tuple(self.module.kernel_size) != (1, 1)


def text_encoder_prefixes(model: BaseModel) -> list[str]:
    """The key prefix of each text encoder, in the model's order: `lora_te_`, or SDXL's `lora_te1_` and `lora_te2_`."""
    if len(model.encoders) == 1:
        return ["lora_te_"]
    return [f"lora_te{i + 1}_" for i in range(len(model.encoders))]


def unet_name(model: BaseModel, path: str) -> str:
    """kohya's name (without prefix) of a UNet module path: diffusers' path, or for SDXL its original SGM path."""
    if model.is_sdxl:
        config = model.unet.config
        up_attention = ["CrossAttn" in t for t in config.up_block_types]
        path = unet_key(f"{path}.weight", config.layers_per_block, up_attention).removesuffix(".weight")
    return path.replace(".", "_")


def clip_path(path: str) -> str:
    """A text encoder module's path as kohya names it, under `text_model.` (transformers 5's CLIPTextModel has no
    such level; CLIPTextModelWithProjection and older releases do)."""
    return path if path.startswith("text_model.") else f"text_model.{path}"


def _unet_wanted(path: str, targets: str) -> bool:
    if _ATTENTION.search(path):
        return True
    if targets in ("attn-mlp", "conv") and _TRANSFORMER.search(path):
        return True
    return targets == "conv" and bool(_RESNET.search(path))


def _te_wanted(path: str, targets: str) -> bool:
    return bool(_TE_ATTENTION.search(path) or (targets != "attn" and _TE_MLP.search(path)))


def places(model: BaseModel, targets: str = "conv", text_encoder: bool = True) -> dict[str, Place]:
    """Every layer of `model` the `targets` choice covers, by kohya's name, the UNet's first (in module order);
    `text_encoder=False` leaves the text encoders' out. `places(model)` is every layer a kohya LoRA or LoCon file
    may name."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {', '.join(TARGETS)}, not {targets!r}")
    found: dict[str, Place] = {}
    for path, module in model.unet.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and _unet_wanted(path, targets):
            key = UNET_PREFIX + unet_name(model, path)
            found[key] = Place(key, "unet", path, module)
    if text_encoder:
        for prefix, encoder in zip(text_encoder_prefixes(model), model.encoders):
            for path, module in encoder.model.named_modules():
                if isinstance(module, torch.nn.Linear) and _te_wanted(path, targets):
                    key = prefix + clip_path(path).replace(".", "_")
                    found[key] = Place(key, "te", path, module)
    return found
