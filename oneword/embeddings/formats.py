"""Embedding files: read every layout people have (see oneword/embeddings/layouts.py) from .pt, .bin,
.safetensors and images, write A1111's .pt or a .safetensors file.

The prompt word is the file stem (A1111), except for images, whose word is the `name` stored inside.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from oneword.embeddings.embedding import SDXL_KEYS, SINGLE_KEY, Embedding, EmbeddingMismatch
from oneword.embeddings.layouts import EmbeddingFileError, a1111_dict, embedding_from_dict, stored_vectors
from oneword.embeddings.png import read_png_embedding
from oneword.errors import OnewordError, first_line
from oneword.files import atomic_write
from oneword.ptfile import save_pt

if TYPE_CHECKING:
    from oneword.models.base import BaseModel

PICKLE_SUFFIXES = (".pt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
IMAGE_SUFFIXES = (".png", ".webp", ".avif", ".jxl")
EMBEDDING_SUFFIXES = (*PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, *IMAGE_SUFFIXES)
"""The suffixes A1111 loads from its embeddings folder (case-insensitive); other files are not embeddings."""
WRITE_SUFFIXES = (".pt", SAFETENSORS_SUFFIX)
MAX_TENSORS = 16
"""A file with more tensors than this is a model, not an embedding: it is refused without reading them."""


def load_embedding_file(path: Path) -> Embedding:
    """Read an embedding from any supported file; EmbeddingFileError (a OnewordError) naming the file if not."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise EmbeddingFileError(path, "no such file")
    if suffix in IMAGE_SUFFIXES:
        embedding = read_png_embedding(path)
        if embedding is None:
            raise EmbeddingFileError(path, "no embedding data (an image without the sd-ti-embedding data)")
        return embedding
    if suffix == SAFETENSORS_SUFFIX:
        data, metadata = _read_safetensors(path)
        return embedding_from_dict(data, path, name=path.stem, metadata=metadata)
    if suffix in PICKLE_SUFFIXES:
        from oneword.safeload import load_pickle

        _check_pickle_magic(path)
        try:
            data = load_pickle(path, mmap=True, parameter_dict=True)
        except OnewordError as e:
            raise EmbeddingFileError(path, _without_path(str(e), path)) from None
        return embedding_from_dict(data, path, name=path.stem)
    raise EmbeddingFileError(path, f"not an embedding file (expected {', '.join(EMBEDDING_SUFFIXES)})")


def _check_pickle_magic(path: Path) -> None:
    """Refuse what is neither torch.save's zip archive nor a pickle (protocol 2+), before unpickling anything."""
    with path.open("rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        raise EmbeddingFileError(path, "not a PyTorch file (neither a zip archive nor a pickle)")


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            keys = list(f.keys())
            if len(keys) > MAX_TENSORS:
                shown = ", ".join(keys[:3])
                raise EmbeddingFileError(path, f"not an embedding: {len(keys)} tensors ({shown}, ...), a model?")
            return {key: f.get_tensor(key) for key in keys}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        detail = first_line(e)
        raise EmbeddingFileError(path, f"not a readable safetensors file ({detail})") from None


def safetensors_dict(embedding: Embedding) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a .safetensors embedding.

    Single-encoder vectors go under the embedding's name, diffusers' own `learned_embeds` layout: A1111, ComfyUI
    and kohya take any single tensor, and diffusers then registers the name as the token. SDXL: clip_l, clip_g.
    """
    from oneword import __version__

    vectors = stored_vectors(embedding)
    tensors = {key: vectors[key] for key in SDXL_KEYS} if embedding.is_sdxl else {embedding.name: vectors[SINGLE_KEY]}
    fields = {"name": embedding.name, "step": embedding.step, "sd_checkpoint": embedding.sd_checkpoint,
              "sd_checkpoint_name": embedding.sd_checkpoint_name}
    metadata = {key: str(value) for key, value in fields.items() if value is not None}
    metadata["oneword_version"] = __version__
    return tensors, metadata


def save_embedding(embedding: Embedding, path: Path, *, model: BaseModel | None = None,
                   overwrite: bool = True) -> None:
    """Write an embedding as A1111 `.pt` or `.safetensors` (by suffix), atomically; without `overwrite` an existing
    file is never replaced (FileExistsError).

    With `model`, the vectors must fit it, and the file records the model as `sd_checkpoint`/`sd_checkpoint_name`
    where the embedding has none (the embedding itself is left as it is).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        allowed = " or ".join(WRITE_SUFFIXES)
        raise OnewordError(f"{path}: embeddings are written as {allowed}, not {suffix or 'no suffix'}")
    if model is not None:
        try:
            embedding.vectors_for(model)
        except EmbeddingMismatch as e:
            raise OnewordError(f"{path}: embedding {embedding.name!r} does not fit {model.name}: {e}") from None
        embedding = dataclasses.replace(
            embedding,
            sd_checkpoint=embedding.sd_checkpoint if embedding.sd_checkpoint is not None else model.short_hash,
            sd_checkpoint_name=embedding.sd_checkpoint_name if embedding.sd_checkpoint_name is not None else model.name,
        )
    if suffix == SAFETENSORS_SUFFIX:
        import safetensors.torch

        tensors, metadata = safetensors_dict(embedding)
        blob = safetensors.torch.save(tensors, metadata=metadata)
        atomic_write(path, lambda f: f.write(blob), overwrite=overwrite)
    else:
        data = a1111_dict(embedding)
        atomic_write(path, lambda f: save_pt(data, f), overwrite=overwrite)


def _without_path(message: str, path: Path) -> str:
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message
