"""What a single file's weights cannot show (norm groups, attention heads, activations, the latent scale), recorded
in its `.safetensors` metadata by the export and read back by the loader.

The loader reads every size from the tensors' shapes; the rest it takes from the kind's shipped config (SD's 32
norm groups, its heads, its VAE scale). A model built otherwise (the toy model: 4 VAE norm groups, 2-channel
attention heads, latent scale 1) keeps those settings under `oneword.config`, a JSON object
`{"unet": {...}, "vae": {...}, "text_encoders": [{...}, ...]}` of the fields below. A `.ckpt` has no metadata:
a model whose settings differ from the shipped ones cannot be exported as one.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from oneword.errors import OnewordError

if TYPE_CHECKING:  # annotations only: the file readers that import this module load no diffusers
    from oneword.models.base import BaseModel

METADATA_KEY = "oneword.config"
ACTIVATIONS = ("silu", "swish", "mish", "gelu", "relu")
"""diffusers activations a UNet or VAE may name."""
TEXT_ACTIVATIONS = ("quick_gelu", "gelu", "gelu_new", "relu", "silu")
"""transformers activations a CLIP text encoder may name."""


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 4096


def _heads(value: Any) -> bool:
    return _count(value) or (isinstance(value, list) and 0 < len(value) <= 16 and all(map(_count, value)))


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


FIELDS = {
    "unet": {"attention_head_dim": _heads, "norm_num_groups": _count, "norm_eps": _positive,
             "act_fn": lambda v: v in ACTIVATIONS},
    "vae": {"norm_num_groups": _count, "scaling_factor": _positive, "act_fn": lambda v: v in ACTIVATIONS},
    "text": {"num_attention_heads": _count, "layer_norm_eps": _positive, "hidden_act": lambda v: v in TEXT_ACTIVATIONS},
}
"""Recorded settings per part, each with the check its value must pass."""


def recorded_settings(model: BaseModel) -> dict[str, Any]:
    """The settings of `model` that its weights cannot show, as the export records them."""
    unet, vae = dict(model.unet.config), dict(model.vae.config)
    return {
        "unet": {k: unet[k] for k in FIELDS["unet"] if k in unet},
        "vae": {k: vae[k] for k in FIELDS["vae"] if k in vae},
        "text_encoders": [{k: getattr(e.model.config, k) for k in FIELDS["text"]} for e in model.encoders],
    }


def read_recorded(metadata: dict[str, str], n_encoders: int) -> dict[str, Any] | None:
    """The settings a file records (None when it records none); OnewordError naming what is malformed."""
    text = metadata.get(METADATA_KEY)
    if text is None:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise OnewordError(f"its {METADATA_KEY} metadata is not JSON ({error})") from None
    if not isinstance(record, dict) or set(record) != {"unet", "vae", "text_encoders"}:
        raise OnewordError(f"its {METADATA_KEY} metadata must hold unet, vae and text_encoders, and nothing else")
    encoders = record["text_encoders"]
    if not isinstance(encoders, list) or len(encoders) != n_encoders:
        raise OnewordError(f"its {METADATA_KEY} metadata must describe {n_encoders} text encoder(s)")
    parts = [("unet", record["unet"], FIELDS["unet"]), ("vae", record["vae"], FIELDS["vae"])]
    parts += [(f"text_encoders[{i}]", e, FIELDS["text"]) for i, e in enumerate(encoders)]
    for part, values, fields in parts:
        if not isinstance(values, dict):
            raise OnewordError(f"its {METADATA_KEY} metadata: {part} is not an object")
        for key, value in values.items():
            if key not in fields:
                raise OnewordError(f"its {METADATA_KEY} metadata: unknown setting {part}.{key}")
            if not fields[key](value):
                raise OnewordError(f"its {METADATA_KEY} metadata: {part}.{key} = {value!r} is out of range")
    return record


def apply_recorded(config: dict[str, Any], record: dict[str, Any]) -> None:
    """Put recorded settings into a kind config inferred from the shapes (changed in place)."""
    config["unet"].update(record["unet"])
    config["vae"].update(record["vae"])
    for encoder, values in zip(config["text_encoders"], record["text_encoders"]):
        encoder["config"].update(values)


def unrecordable(model: BaseModel, inferred: dict[str, Any]) -> list[str]:
    """The recorded settings in which `model` differs from `inferred`, the config a loader builds from the shapes
    alone: what a file without metadata (`.ckpt`) would lose."""
    ours = recorded_settings(model)
    found = [f"{part} {k} {_plain(v)}" for part in ("unet", "vae") for k, v in ours[part].items()
             if k in inferred[part] and _plain(inferred[part][k]) != _plain(v)]
    for i, (mine, encoder) in enumerate(zip(ours["text_encoders"], inferred["text_encoders"]), start=1):
        found += [f"text encoder {i} {k} {_plain(v)}" for k, v in mine.items()
                  if k in encoder["config"] and _plain(encoder["config"][k]) != _plain(v)]
    return found


def _plain(value: Any) -> str:
    return json.dumps(value)  # tuples and lists alike
