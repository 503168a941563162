"""Save a BaseModel as one checkpoint file in the original CompVis / Stability layout (A1111, ComfyUI).

The key mapping is the inverse of diffusers' single-file conversion (`diffusers.loaders.single_file_utils`),
written for any number of levels and layers so that tiny models export too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save_file

from oneword.errors import OnewordError
from oneword.models.detect import ENCODER_PREFIXES, UNET, VAE, detect_kind, infer_config, is_open_clip
from oneword.models.recorded import METADATA_KEY, recorded_settings, unrecordable
from oneword.ptfile import save_pt

if TYPE_CHECKING:  # annotations only: the file readers that import this module load no diffusers
    from oneword.models.base import BaseModel

SUFFIXES = (".safetensors", ".ckpt")

ARCHITECTURE = {  # SAI ModelSpec names, read by kohya, ComfyUI and A1111 extensions
    "sd1": ("stable-diffusion-v1", "https://github.com/CompVis/stable-diffusion"),
    "sd2": ("stable-diffusion-v2-512", "https://github.com/Stability-AI/stablediffusion"),
    "sd2-v": ("stable-diffusion-v2-768-v", "https://github.com/Stability-AI/stablediffusion"),
    "sdxl": ("stable-diffusion-xl-v1-base", "https://github.com/Stability-AI/generative-models"),
}

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
                "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_OPEN_CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                    "self_attn.out_proj": "attn.out_proj"}
_OPEN_CLIP_TOP = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
}


def save_single_file(model: BaseModel, path: Path, *, dtype: torch.dtype | None = None) -> None:
    """Write `model` as one `.safetensors` or `.ckpt` (a torch.save of {"state_dict": ...}) in the original layout.

    Tensors keep the model's dtype unless `dtype` is given (floating tensors only). The file is written beside
    its destination and renamed into place, so a failed write never leaves half a checkpoint.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise OnewordError(f"{path}: a single-file checkpoint must end in {' or '.join(SUFFIXES)}")
    tensors = {
        key: _own_storage(t.to(dtype) if dtype is not None and t.is_floating_point() else t)
        for key, t in original_state_dict(model).items()
    }
    if path.suffix.lower() == ".ckpt":
        _check_ckpt_can_hold(model, path, {k: tuple(t.shape) for k, t in tensors.items()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    done = False
    try:
        if path.suffix.lower() == ".safetensors":
            save_file(tensors, str(tmp), metadata=_metadata(model))
        else:
            save_pt({"state_dict": tensors}, tmp)
        os.replace(tmp, path)
        done = True
    finally:
        if not done:
            tmp.unlink(missing_ok=True)


def _check_ckpt_can_hold(model: BaseModel, path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a `.ckpt` (no metadata) of a model that its weights' shapes alone would load as another model."""
    lost = unrecordable(model, infer_config(detect_kind(shapes), shapes))
    if lost:
        raise OnewordError(f"{path}: a .ckpt cannot record this model's {', '.join(lost)} (its loader would assume "
                           f"{model.kind}'s usual settings); export a .safetensors, which records them")


def original_state_dict(model: BaseModel) -> dict[str, torch.Tensor]:
    """Every weight of `model` under its original key name (mostly views of the model's own tensors).

    Works on a model built with empty (meta) weights too, which gives the keys and shapes a file must have.
    SD 2.x: diffusers' text encoder stops at the penultimate OpenCLIP layer, so one more resblock is written,
    all zeros (a residual block whose weights are zero is the identity: running it changes nothing), and a
    zero `text_projection` of the configured projection width, which SD 2.x conditioning never reads.
    """
    unet = model.unet.config
    up_attention = ["CrossAttn" in t for t in unet.up_block_types]
    out = {f"{UNET}{unet_key(k, unet.layers_per_block, up_attention)}": t for k, t in model.unet.state_dict().items()}
    levels = len(model.vae.config.block_out_channels)
    for key, t in model.vae.state_dict().items():
        name = vae_key(key, levels)
        if re.search(r"mid\.attn_1\.(q|k|v|proj_out)\.weight$", name):
            t = t.reshape(*t.shape, 1, 1)  # the original VAE attention uses 1x1 convs: (C, C) -> (C, C, 1, 1)
        out[f"{VAE}{name}"] = t
    for prefix, encoder in zip(ENCODER_PREFIXES[model.kind], model.encoders):
        tensors = canonical_clip_keys(encoder.model.state_dict())
        if is_open_clip(prefix):
            sd2 = model.kind in ("sd2", "sd2-v")
            converted = open_clip_to_original(tensors, encoder.model.config.projection_dim if sd2 else None)
        else:
            converted = dict(tensors)
            positions = encoder.model.config.max_position_embeddings
            converted["text_model.embeddings.position_ids"] = torch.arange(positions).unsqueeze(0)  # (1, 77)
        out.update({f"{prefix}{k}": t for k, t in converted.items()})
    return out


def unet_key(key: str, layers_per_block: int, up_attention: list[bool]) -> str:
    """The original name of a diffusers UNet weight (`down_blocks.1.attentions.0...` -> `input_blocks.4.1...`)."""
    per = layers_per_block + 1  # each level: its resnets, then a down- or upsampler
    m = re.fullmatch(r"(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.+)", key)
    if m:
        side, b, part, j, rest = m[1], int(m[2]), m[3], int(m[4]), m[5]
        if part == "downsamplers":
            return f"input_blocks.{(b + 1) * per}.0.op.{rest.removeprefix('conv.')}"
        if part == "upsamplers":  # after the resnet, or after its attention when the level has one
            return f"output_blocks.{b * per + layers_per_block}.{2 if up_attention[b] else 1}.{rest}"
        block = f"input_blocks.{1 + b * per + j}" if side == "down" else f"output_blocks.{b * per + j}"
        return f"{block}.0.{_rename_head(rest, _UNET_RESNET)}" if part == "resnets" else f"{block}.1.{rest}"
    m = re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if m:
        if m[1] == "resnets":
            return f"middle_block.{2 * int(m[2])}.{_rename_head(m[3], _UNET_RESNET)}"
        return f"middle_block.1.{m[3]}"
    head, _, param = key.rpartition(".")
    if head in _UNET_TOP:
        return f"{_UNET_TOP[head]}.{param}"
    raise OnewordError(f"cannot export UNet weight {key}: no place for it in the original layout")


def vae_key(key: str, levels: int) -> str:
    """The original name of a diffusers VAE weight (`decoder.up_blocks.0...` -> `decoder.up.3...`)."""
    m = re.fullmatch(r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)", key)
    if m:
        coder, side, i, part, j, rest = m[1], m[2], int(m[3]), m[4], m[5], m[6]
        level = i if side == "down" else levels - 1 - i  # the original decoder counts its levels from the bottom
        if part == "resnets":
            return f"{coder}.{side}.{level}.block.{j}.{_rename_head(rest, {'conv_shortcut': 'nin_shortcut'})}"
        return f"{coder}.{side}.{level}.{'downsample' if side == 'down' else 'upsample'}.{rest}"
    m = re.fullmatch(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if m:
        if m[2] == "resnets":
            return f"{m[1]}.mid.block_{int(m[3]) + 1}.{_rename_head(m[4], {'conv_shortcut': 'nin_shortcut'})}"
        head, _, param = m[4].rpartition(".")
        return f"{m[1]}.mid.attn_1.{_VAE_ATTENTION.get(head, head)}.{param}"
    return key.replace("conv_norm_out.", "norm_out.")


def canonical_clip_keys(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers CLIP state dict with the `text_model.` prefix on every text weight (as stored on the Hub).

    transformers 5 names CLIPTextModel's weights without that prefix; CLIPTextModelWithProjection keeps it.
    """
    return {k if k.startswith(("text_model.", "text_projection")) else f"text_model.{k}": t
            for k, t in tensors.items()}


def open_clip_to_original(tensors: Mapping[str, torch.Tensor], sd2_projection: int | None) -> dict[str, torch.Tensor]:
    """A canonical CLIP state dict in OpenCLIP's layout; `sd2_projection` adds SD 2.x's extra layer and projection."""
    out: dict[str, torch.Tensor] = {}
    layers = sorted({int(k.split(".")[3]) for k in tensors if k.startswith("text_model.encoder.layers.")})
    for key, t in tensors.items():
        if key in _OPEN_CLIP_TOP:
            out[_OPEN_CLIP_TOP[key]] = t
        elif key == "text_projection.weight":
            out["text_projection"] = t.T  # OpenCLIP multiplies x @ P with P (width, projection)
    for n in layers:
        src, dst = f"text_model.encoder.layers.{n}.", f"transformer.resblocks.{n}."
        for old, new in _OPEN_CLIP_LAYER.items():
            for param in ("weight", "bias"):
                out[f"{dst}{new}.{param}"] = tensors[f"{src}{old}.{param}"]
        for param in ("weight", "bias"):  # q, k and v stacked: (3 * width, width) and (3 * width,)
            qkv = [tensors[f"{src}self_attn.{p}_proj.{param}"] for p in "qkv"]
            out[f"{dst}attn.in_proj_{param}"] = torch.cat(qkv)
    if sd2_projection is not None:
        last, extra = f"transformer.resblocks.{layers[-1]}.", f"transformer.resblocks.{layers[-1] + 1}."
        for key in [k for k in out if k.startswith(last)]:
            out[extra + key[len(last):]] = torch.zeros_like(out[key])
        embedding = out["token_embedding.weight"]  # (vocab, width)
        out["text_projection"] = torch.zeros(embedding.shape[1], sd2_projection, dtype=embedding.dtype,
                                             device=embedding.device)
    return out


def _rename_head(rest: str, names: Mapping[str, str]) -> str:
    head, _, param = rest.rpartition(".")
    return f"{names.get(head, head)}.{param}"


def _own_storage(t: torch.Tensor) -> torch.Tensor:
    # torch.save writes a view's whole storage and safetensors wants contiguous tensors: copy only when needed.
    t = t.contiguous()
    if t.untyped_storage().nbytes() != t.numel() * t.element_size():
        t = t.clone()
    return t


def _metadata(model: BaseModel) -> dict[str, str]:
    architecture, implementation = ARCHITECTURE[model.kind]
    scale = 2 ** (len(model.vae.config.block_out_channels) - 1)
    side = model.unet.config.sample_size * scale
    return {
        "format": "pt",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": architecture,
        "modelspec.implementation": implementation,
        "modelspec.title": model.name,
        "modelspec.resolution": f"{side}x{side}",
        "modelspec.prediction_type": "v" if model.prediction_type == "v_prediction" else "epsilon",
        METADATA_KEY: json.dumps(recorded_settings(model)),
    }
