"""Which model a single-file checkpoint holds, and its config, read from tensor names and shapes alone."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from oneword.errors import OnewordError
from oneword.models.kinds import kind_config

Shapes = Mapping[str, tuple[int, ...]]

# Prefixes of the original (CompVis / Stability) layout.
UNET = "model.diffusion_model."
VAE = "first_stage_model."
SD1_CLIP = "cond_stage_model.transformer."
SD2_OPEN_CLIP = "cond_stage_model.model."
SDXL_CLIP = "conditioner.embedders.0.transformer."
SDXL_OPEN_CLIP = "conditioner.embedders.1.model."

ENCODER_PREFIXES: dict[str, tuple[str, ...]] = {
    "sd1": (SD1_CLIP,),
    "sd2": (SD2_OPEN_CLIP,),
    "sd2-v": (SD2_OPEN_CLIP,),
    "sdxl": (SDXL_CLIP, SDXL_OPEN_CLIP),
}
"""Where each text encoder of a kind lives, in the order of `BaseModel.encoders`."""

_CONTEXT_KINDS = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
HEAD_CHANNELS = 64
"""SD 2.x / SDXL UNet heads and every text encoder's heads have 64 channels (SD 1.x UNet: 8 heads)."""


def is_open_clip(prefix: str) -> bool:
    """Whether the encoder under `prefix` is stored in OpenCLIP's layout (resblocks, in_proj_weight)."""
    return prefix.endswith(".model.")


def detect_kind(shapes: Shapes) -> str:
    """The kind ("sd1", "sd2" or "sdxl") of a checkpoint in the original layout, from its keys and shapes.

    SD 2.x is returned as "sd2": the weights of the 512 epsilon and the 768 v-prediction models have the same
    names and shapes; the loader decides between them (see `oneword.models.single_file`).
    Raises OnewordError naming what was found when the file is not a model oneword knows.
    """
    if not any(k.startswith(UNET) for k in shapes):
        raise OnewordError(f"not a Stable Diffusion checkpoint (no model.diffusion_model keys; {_describe(shapes)})")
    context = _context_width(shapes)
    if context is None:
        raise OnewordError("unknown architecture: UNet without cross-attention (no attn2.to_k weights)")
    conv_in = shapes.get(f"{UNET}input_blocks.0.0.weight")
    if conv_in is not None and len(conv_in) == 4 and conv_in[1] != 4:
        raise OnewordError(
            f"unknown architecture: UNet with {conv_in[1]} input channels (an inpainting or depth model?); "
            "oneword needs a text-to-image model with 4 latent channels"
        )
    if _has(shapes, "conditioner.embedders.0.model."):
        raise OnewordError(f"unknown architecture: SDXL refiner (one OpenCLIP encoder, context width {context})")
    if _has(shapes, SDXL_OPEN_CLIP) or _has(shapes, SDXL_CLIP):
        kind = "sdxl"
    elif _has(shapes, SD2_OPEN_CLIP):
        kind = "sd2"
    elif _has(shapes, SD1_CLIP):
        kind = "sd1"
    elif context in _CONTEXT_KINDS:
        return _CONTEXT_KINDS[context]  # no text encoder: the missing keys are reported by the loader
    else:
        raise OnewordError(f"unknown architecture: UNet with context width {context} and no text encoder keys")
    widths = [_token_embedding(shapes, p)[1] for p in ENCODER_PREFIXES[kind] if _has(shapes, p)]
    if kind == "sdxl" and f"{UNET}label_emb.0.0.weight" not in shapes:
        raise OnewordError("unknown architecture: SDXL text encoders but no label_emb (size conditioning) in the UNet")
    if len(widths) == len(ENCODER_PREFIXES[kind]) and sum(widths) != context:
        described = " + ".join(str(w) for w in widths)
        raise OnewordError(f"unknown architecture: UNet with context width {context} "
                           f"but text encoder width {described} ({kind} layout)")
    return kind


def infer_config(kind: str, shapes: Shapes) -> dict[str, Any]:
    """The kind's shipped config with every size the tensors show read from them (tiny models load too).

    What the weights cannot show follows the rules the shipped and tiny models keep: SD 1.x UNets have 8 heads,
    SD 2.x / SDXL UNets and all text encoders heads of 64 channels (at least one), 32 norm groups; the
    activation (quick_gelu for CLIP ViT-L, gelu for OpenCLIP) comes from the kind. SD 2.x's text encoder keeps
    all but the last of the file's resblocks: diffusers reads its penultimate layer as the last hidden state.
    """
    config = kind_config(kind)
    _unet_config(shapes, config["unet"], sd1=kind == "sd1")
    _vae_config(shapes, config["vae"])
    for prefix, encoder in zip(ENCODER_PREFIXES[kind], config["text_encoders"]):
        drop_last = kind in ("sd2", "sd2-v")
        reader = _open_clip_config if is_open_clip(prefix) else _clip_config
        encoder["config"].update(reader(shapes, prefix, drop_last))
    if kind == "sdxl":
        unet = config["unet"]
        adm = shapes[f"{UNET}label_emb.0.0.weight"][1]
        pooled = config["text_encoders"][1]["config"]["projection_dim"]
        # SDXL's added embedding: the pooled text vector and six sinusoidal size/crop numbers, concatenated.
        if (adm - pooled) <= 0 or (adm - pooled) % 6:
            raise OnewordError(
                f"unknown architecture: SDXL label_emb input {adm} does not fit a pooled width of {pooled} + 6 numbers"
            )
        unet["projection_class_embeddings_input_dim"] = adm
        unet["addition_time_embed_dim"] = (adm - pooled) // 6
    return config


def _unet_config(shapes: Shapes, unet: dict[str, Any], *, sd1: bool) -> None:
    p = UNET
    conv_in = _need(shapes, f"{p}input_blocks.0.0.weight")  # (C0, in, 3, 3)
    levels: list[list[tuple[int, int]]] = [[]]  # per resolution: (channels, transformer depth) of each resnet
    for i in _indices(shapes, f"{p}input_blocks.")[1:]:
        if f"{p}input_blocks.{i}.0.op.weight" in shapes:
            levels.append([])
            continue
        channels = _need(shapes, f"{p}input_blocks.{i}.0.out_layers.3.weight")[0]
        levels[-1].append((channels, len(_indices(shapes, f"{p}input_blocks.{i}.1.transformer_blocks."))))
    layers = {len(level) for level in levels}
    if len(layers) != 1 or 0 in layers or any(len(set(level)) != 1 for level in levels):
        found = ", ".join(f"{[c for c, _ in level]}" for level in levels)
        raise OnewordError(f"unknown architecture: UNet levels with uneven resnets or widths ({found})")
    channels = [level[0][0] for level in levels]
    depths = [level[0][1] for level in levels]
    mid_depth = len(_indices(shapes, f"{p}middle_block.1.transformer_blocks."))
    if mid_depth == 0 or (depths[-1] and depths[-1] != mid_depth):
        raise OnewordError(f"unknown architecture: UNet middle block with {mid_depth} transformer layers")
    per_up = layers.pop() + 1
    up_attention = [
        any(_indices(shapes, f"{p}output_blocks.{b * per_up + j}.1.transformer_blocks.") for j in range(per_up))
        for b in range(len(levels))
    ]
    unet.update(
        in_channels=conv_in[1],
        out_channels=_need(shapes, f"{p}out.2.weight")[0],
        block_out_channels=channels,
        layers_per_block=per_up - 1,
        down_block_types=["CrossAttnDownBlock2D" if d else "DownBlock2D" for d in depths],
        up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in up_attention],
        cross_attention_dim=_context_width(shapes),
        # SD 1.x projects into the transformer with a 1x1 conv (C, C, 1, 1), SD 2.x and SDXL with a linear (C, C).
        use_linear_projection=len(_need(shapes, f"{p}middle_block.1.proj_in.weight")) == 2,
    )
    # A level without attention takes no depth; diffusers gives the middle block the last level's depth.
    transformer_depths = [d or 1 for d in depths[:-1]] + [mid_depth]
    if set(transformer_depths) == {1}:
        unet.pop("transformer_layers_per_block", None)
    else:
        unet["transformer_layers_per_block"] = transformer_depths
    if not sd1:  # diffusers' attention_head_dim is the number of heads here: channels / 64
        unet["attention_head_dim"] = [max(1, c // HEAD_CHANNELS) for c in channels]


def _vae_config(shapes: Shapes, vae: dict[str, Any]) -> None:
    p = VAE
    levels = _indices(shapes, f"{p}encoder.down.")
    if not levels:
        _need(shapes, f"{p}encoder.down.0.block.0.conv1.weight")
    channels = [_need(shapes, f"{p}encoder.down.{i}.block.0.conv2.weight")[0] for i in levels]
    vae.update(
        in_channels=_need(shapes, f"{p}encoder.conv_in.weight")[1],
        out_channels=_need(shapes, f"{p}decoder.conv_out.weight")[0],
        latent_channels=_need(shapes, f"{p}decoder.conv_in.weight")[1],
        block_out_channels=channels,
        layers_per_block=len(_indices(shapes, f"{p}encoder.down.0.block.")),
        down_block_types=["DownEncoderBlock2D"] * len(channels),
        up_block_types=["UpDecoderBlock2D"] * len(channels),
        mid_block_add_attention=f"{p}encoder.mid.attn_1.q.weight" in shapes,
    )


def _clip_config(shapes: Shapes, prefix: str, drop_last: bool) -> dict[str, int]:
    vocab, width = _token_embedding(shapes, prefix)
    body = f"{prefix}text_model." if f"{prefix}text_model.embeddings.token_embedding.weight" in shapes else prefix
    layers = len(_indices(shapes, f"{body}encoder.layers."))
    return _text_config(
        vocab=vocab,
        width=width,
        positions=_need(shapes, f"{body}embeddings.position_embedding.weight")[0],
        layers=layers - int(drop_last),
        intermediate=_need(shapes, f"{body}encoder.layers.0.mlp.fc1.weight")[0],
        projection=width,  # CLIPTextModel has no projection; the shipped configs give CLIP-L its own width
    )


def _open_clip_config(shapes: Shapes, prefix: str, drop_last: bool) -> dict[str, int]:
    vocab, width = _token_embedding(shapes, prefix)
    layers = len(_indices(shapes, f"{prefix}transformer.resblocks."))
    projection = shapes.get(f"{prefix}text_projection")  # (width, projection_dim)
    return _text_config(
        vocab=vocab,
        width=width,
        positions=_need(shapes, f"{prefix}positional_embedding")[0],
        layers=layers - int(drop_last),
        intermediate=_need(shapes, f"{prefix}transformer.resblocks.0.mlp.c_fc.weight")[0],
        projection=projection[1] if projection else None,
    )


def _text_config(*, vocab, width, positions, layers, intermediate, projection) -> dict[str, int]:
    if layers < 1:
        raise OnewordError(f"unknown architecture: text encoder with {layers} layers")
    config = {
        "vocab_size": vocab,
        "hidden_size": width,
        "max_position_embeddings": positions,
        "num_hidden_layers": layers,
        "intermediate_size": intermediate,
        "num_attention_heads": max(1, width // HEAD_CHANNELS),
    }
    if projection is not None:
        config["projection_dim"] = projection
    return config


def _token_embedding(shapes: Shapes, prefix: str) -> tuple[int, ...]:
    if is_open_clip(prefix):
        candidates = [f"{prefix}token_embedding.weight"]
    else:
        candidates = [f"{prefix}text_model.embeddings.token_embedding.weight",
                      f"{prefix}embeddings.token_embedding.weight"]  # old transformers: no `text_model.`
    for key in candidates:
        if key in shapes:
            return shapes[key]  # (vocab, width)
    raise OnewordError(f"missing text encoder key {candidates[0]}")


def _context_width(shapes: Shapes) -> int | None:
    key = _first_key(shapes, r"^model\.diffusion_model\..*\.attn2\.to_k\.weight$")
    return shapes[key][1] if key else None  # (inner, context)


def _has(shapes: Shapes, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in shapes)


def _first_key(shapes: Shapes, pattern: str) -> str | None:
    regex = re.compile(pattern)
    return next((key for key in sorted(shapes) if regex.search(key)), None)


def _need(shapes: Shapes, key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise OnewordError(f"missing required key {key}")
    return tuple(shapes[key])


def _indices(shapes: Shapes, prefix: str) -> list[int]:
    """The distinct integers that follow `prefix` in the keys, sorted (block and layer numbers)."""
    found = set()
    for key in shapes:
        if key.startswith(prefix):
            head = key[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _describe(shapes: Shapes) -> str:
    """What a file that is not a full checkpoint seems to be, for the error message."""
    keys = sorted(shapes)
    if not keys:
        return "it holds no tensors"
    joined = " ".join(keys[:200])
    hints = (
        (("string_to_param", "emb_params", "emp_params"), "looks like a textual inversion embedding"),
        (("lora_unet_", "lora_te", ".lora_down.", ".lora_A."), "looks like a LoRA"),
        (("down_blocks.", "conv_in.weight", "text_model.encoder."), "looks like diffusers-format weights: "
         "point --model at the diffusers folder instead"),
        (("encoder.down.", "decoder.up."), "looks like a VAE only"),
    )
    for needles, hint in hints:
        if any(n in joined for n in needles):
            return f"{len(keys)} tensors, {hint}"
    if set(keys) == {"clip_g", "clip_l"}:
        return "2 tensors, looks like an SDXL textual inversion embedding"
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    return f"{len(keys)} tensors: {shown}"
