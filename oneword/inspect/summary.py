"""A safetensors file read from its header and its numbers with numpy, without torch: what `oneword inspect`
describes of a plain LoRA or LoCon (kohya's `lora_down`, `lora_up` and `alpha` keys) and of an embedding file,
the same as the full readers give (oneword/inspect/describe.py).

Anything else (LyCORIS, PEFT, a bundle, a hypernetwork, a dtype numpy lacks) and any file a reader would refuse or
keep in part (a NaN, a layer whose parts do not fit, a limit passed) gives None: the full readers, which need torch,
then read it and say why, so the output is the same either way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oneword.embeddings.embedding import MAX_ABS, MAX_VECTORS, SDXL_KEYS
from oneword.lora.limits import MAX_HEADER_BYTES, MAX_LAYER_NUMBERS, MAX_TENSORS

NUMBERS = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "BF16": "<u2"}
"""safetensors dtypes of real numbers -> how numpy reads them (bfloat16 as the top half of a float32's bits)."""
LORA_PARTS = ("lora_down.weight", "lora_up.weight", "alpha")
EMBEDDING_KEYS = ({"emb_params"}, {"emp_params"}, {"string_to_param.*"}, set(SDXL_KEYS))
"""The key sets of an embedding file described here; a single tensor under any other name is one too."""
MAX_DIGITS = 20
"""A longer `step` is no step count (oneword/embeddings/layouts.py)."""


@dataclass(frozen=True)
class Entry:
    """One tensor of the header: its dtype, shape and where its bytes lie after the header."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class HeaderLayer:
    """A LoRA or LoCon layer known from its parts' shapes and its alpha."""

    down: Entry
    alpha: float

    @property
    def rank(self) -> int:
        return self.down.shape[0]


@dataclass(frozen=True)
class HeaderLora:
    """What describing a LoRA needs, as a Lora names it: its layers by kohya key (sorted, as the reader keeps them),
    the header's metadata and the trigger phrase; no bundled words (a bundle goes to the full reader)."""

    kind: str
    """LoRA, or LoCon when a layer is a convolution larger than 1x1 (oneword/lora/read.py `lora_kind`)."""
    layers: dict[str, HeaderLayer]
    metadata: dict[str, str]
    trigger: str | None
    embeddings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HeaderEmbedding:
    """What describing an embedding needs, as an Embedding names it."""

    name: str
    widths: dict[str, int]
    """Encoder key (`*`, or `clip_l` and `clip_g`) -> width of its vectors."""
    n_vectors: int
    step: int | None
    sd_checkpoint_name: str | None
    sd_checkpoint: str | None


def summarize(path: Path, shapes: dict[str, tuple[int, ...]],
              metadata: dict[str, str]) -> HeaderLora | HeaderEmbedding | None:
    """A plain LoRA/LoCon or embedding safetensors file as its header and numbers give it, or None for the full
    readers."""
    keys = set(shapes)
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if size > MAX_HEADER_BYTES or len(keys) > MAX_TENSORS:
            return None
        header = json.loads(f.read(size))
        entries = {k: Entry(v["dtype"], tuple(v["shape"]), *v["data_offsets"]) for k, v in header.items()
                   if k != "__metadata__"}
        numbers = _Numbers(f, 8 + size)
        if keys and all(_lora_part(key) for key in keys):
            return _lora(path, entries, metadata, numbers)
        if keys in EMBEDDING_KEYS or (len(keys) == 1 and _plain_name(next(iter(keys)))):
            return _embedding(path, entries, metadata, numbers)
    return None


class _Numbers:
    """Reads a tensor's numbers as float32 from the open file."""

    def __init__(self, file: Any, base: int) -> None:
        self.file, self.base = file, base

    def usable(self, entry: Entry) -> np.ndarray | None:
        """The numbers as float32 when all are finite and within MAX_ABS (as the readers require), else None."""
        if entry.dtype not in NUMBERS or 0 in entry.shape:
            return None
        self.file.seek(self.base + entry.start)
        values = np.frombuffer(self.file.read(entry.end - entry.start), dtype=NUMBERS[entry.dtype])
        if entry.dtype == "BF16":
            values = (values.astype(np.uint32) << 16).view(np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # a float64 beyond float32 becomes inf, as in torch
            values = values.astype(np.float32)
        if not np.isfinite(values).all() or float(np.abs(values).max()) > MAX_ABS:
            return None
        return values.reshape(entry.shape)


def _lora_part(key: str) -> bool:
    layer, _, part = key.partition(".")
    return layer.startswith("lora_") and part in LORA_PARTS


def _plain_name(key: str) -> bool:
    """Whether a single tensor's name is no LoRA's (kohya, PEFT, diffusers) and no bundled word's."""
    return "lora" not in key.lower() and not key.startswith("bundle_emb.")


def _fits(down: tuple[int, ...], up: tuple[int, ...]) -> bool:
    """Whether the parts make a LoRA layer, by the reader's rule (oneword/lora/network.py `pair_problem`)."""
    return (len(down) in (2, 4) and len(up) == len(down) and 0 not in down and 0 not in up and down[0] == up[1]
            and up[2:] in ((), (1, 1)))


def _lora(path: Path, entries: dict[str, Entry], metadata: dict[str, str], numbers: _Numbers) -> HeaderLora | None:
    grouped: dict[str, dict[str, Entry]] = {}
    for key, entry in entries.items():
        layer, _, part = key.partition(".")
        grouped.setdefault(layer, {})[part] = entry
    layers = {}
    for key, parts in sorted(grouped.items()):
        down, up = parts.get("lora_down.weight"), parts.get("lora_up.weight")
        if down is None or up is None or not _fits(down.shape, up.shape):
            return None
        if math.prod((up.shape[0], *down.shape[1:])) > MAX_LAYER_NUMBERS:
            return None
        alpha = float(down.shape[0])
        if "alpha" in parts:
            if math.prod(parts["alpha"].shape) != 1:
                return None
            alpha = numbers.usable(parts["alpha"])
            if alpha is None:
                return None
            alpha = float(alpha.reshape(()))
        if numbers.usable(down) is None or numbers.usable(up) is None:
            return None
        layers[key] = HeaderLayer(down, alpha)
    locon = any(len(layer.down.shape) == 4 and layer.down.shape[-1] > 1 for layer in layers.values())
    return HeaderLora("LoCon" if locon else "LoRA", layers, metadata, metadata.get("modelspec.trigger_phrase") or None)


def _embedding(path: Path, entries: dict[str, Entry], metadata: dict[str, str],
               numbers: _Numbers) -> HeaderEmbedding | None:
    widths, counts = {}, set()
    for key, entry in entries.items():
        shape = (1, *entry.shape) if len(entry.shape) == 1 else entry.shape
        if len(shape) != 2 or shape[0] > MAX_VECTORS or numbers.usable(entry) is None:
            return None
        widths["*" if len(entries) == 1 or key in ("emb_params", "emp_params") else key] = shape[1]
        counts.add(shape[0])
    if len(counts) != 1:
        return None
    text = metadata.get("step")
    step = None
    if text is not None and text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS:
        step = int(text)
    elif text is not None and text.strip().lstrip("-").isdigit() and len(text) <= MAX_DIGITS:
        return None  # a signed or spaced count: the full reader's rule decides
    widths = {key: widths[key] for key in sorted(widths, key=["*", *SDXL_KEYS].index)}
    return HeaderEmbedding(path.stem, widths, counts.pop(), step, metadata.get("sd_checkpoint_name"),
                           metadata.get("sd_checkpoint"))
