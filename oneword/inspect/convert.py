"""`oneword inspect FILE --convert TOOL --out DIR`: write what TOOL needs to load what FILE holds.

A bundle becomes its LoRA without the `bundle_emb.*` keys (every other tensor and the metadata as they were, the
hash recomputed) and each word as an embedding file; an embedding becomes the tool's embedding file (A1111 `.pt`,
SDXL `.safetensors`; one tensor per file for diffusers, one file per SDXL encoder); a diffusers/PEFT LoRA gets
kohya's names for A1111 and kohya; a `.safetensors` hypernetwork becomes A1111's `.pt`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import save

from oneword.embeddings.embedding import Embedding
from oneword.errors import OnewordError
from oneword.files import atomic_write
from oneword.inspect.describe import Inspection
from oneword.inspect.tools import TOOLS, support
from oneword.lora.bundle import PREFIX

TARGETS = {tool.lower(): tool for tool in TOOLS if tool != "oneword"}
"""`--convert` values (lowercase) -> the tool."""


def check_convertible(found: Inspection, tool: str) -> str:
    """The tool `--convert` names; OnewordError when it names none or `found` is unsafe or unknown."""
    if tool.lower() not in TARGETS:
        raise OnewordError(f"--convert must be one of {', '.join(TARGETS)}, not {tool!r}")
    if not found.safe:
        raise OnewordError(f"{found.path}: not converted: it would run code on loading")
    if found.what == "unknown":
        raise OnewordError(f"{found.path}: not converted: {found.problem or 'not a file oneword recognises'}")
    return TARGETS[tool.lower()]


def convert(found: Inspection, tool: str, out: Path) -> list[tuple[Path, str]]:
    """Write what `tool` needs of `found` into `out`: (file, what it is) for each file written; [] when the tool
    loads the file as it is. OnewordError when it cannot be converted for that tool, naming why."""
    tool = check_convertible(found, tool)
    loads = {name: ok for name, ok, _ in support(found)}
    if loads[tool]:
        return []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if found.what.startswith("bundle"):
        return _bundle(found, tool, out)
    if found.what == "embedding":
        return _embedding(found.content, tool, out)
    if found.what == "hypernetwork" and tool in ("A1111", "ComfyUI"):
        from oneword.hypernetworks.formats import save_hypernetwork

        path = out / f"{found.path.stem}.pt"
        save_hypernetwork(found.content, path)
        return [(path, "hypernetwork (A1111 .pt)")]
    if found.layout == "diffusers" and not any(k in found.what for k in ("LoHa", "LoKr")):
        return [_kohya_lora(found, out)]
    raise OnewordError(f"{found.path}: a {found.what} cannot be converted for {tool}: "
                       f"{ {n: why for n, _, why in support(found)}[tool]}")


def _bundle(found: Inspection, tool: str, out: Path) -> list[tuple[Path, str]]:
    if tool == "diffusers" and any(k in found.what for k in ("LoHa", "LoKr")):
        raise OnewordError(f"{found.path}: its LoHa/LoKr layers do not load in diffusers; not converted")
    from safetensors import safe_open

    from oneword.lora.write import addnet_hash

    with safe_open(str(found.path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith(PREFIX)}  # noqa: SIM118
        metadata = dict(f.metadata() or {})
    metadata.pop("sshs_model_hash", None)
    metadata["sshs_model_hash"] = addnet_hash(save(tensors))
    path = out / found.path.name
    data = save(tensors, metadata)
    atomic_write(path, lambda file: file.write(data))
    written = [(path, f"LoRA without the bundled words ({len(found.words)} left out)")]
    for embedding in found.content.embeddings.values():
        written += _embedding(embedding, tool, out)
    return written


def _embedding(embedding: Embedding, tool: str, out: Path) -> list[tuple[Path, str]]:
    from oneword.embeddings.formats import save_embedding

    word = embedding.name
    if tool == "diffusers" and embedding.is_sdxl:
        written = []
        for key, encoder in (("clip_l", "text_encoder, tokenizer"), ("clip_g", "text_encoder_2, tokenizer_2")):
            path = out / f"{word}.{key}.safetensors"
            single = Embedding(word, {"*": embedding.vectors[key]})
            save_embedding(single, path)
            written.append((path, f"embedding {word}, {key}: load_textual_inversion(..., token={word!r}) with "
                                  f"pipe.{encoder}"))
        return written
    suffix = ".pt" if tool == "A1111" and not embedding.is_sdxl else ".safetensors"
    path = out / f"{word}{suffix}"
    save_embedding(dataclasses.replace(embedding, source=None), path)
    return [(path, f"embedding {word}")]


def _kohya_lora(found: Inspection, out: Path) -> tuple[Path, str]:
    from oneword.lora.network import LoraLayer
    from oneword.lora.read import Unusable
    from oneword.lora.write import save_lora

    lora = found.content
    layers = {k: v for k, v in lora.layers.items() if isinstance(v, LoraLayer)}
    left = [k for k, v in lora.layers.items() if isinstance(v, Unusable)]
    path = out / f"{found.path.stem}.safetensors"
    save_lora(dataclasses.replace(lora, layers=layers, embeddings={}), path, {}, torch.float32)
    note = f" ({len(left)} unreadable layers left out)" if left else ""
    return path, f"LoRA with kohya's layer names{note}"
