"""The dict layouts of embedding files: every one people have (A1111, SDXL, diffusers, kohya, OneTrainer) read
into an Embedding, and A1111's written.

Layouts read (the first that matches wins, as in A1111):
- A1111 dict: `string_to_param` {"*": [n, dim]} with `name`, `step`, `sd_checkpoint`, `sd_checkpoint_name`;
- SDXL: `clip_l` [n, 768] and `clip_g` [n, 1280], both required (OneTrainer's `*_out` tensors ignored);
- kohya `emb_params`, OneTrainer `emp_params` (its `emp_params_out` ignored; an output embedding, whose
  vectors are only in `emp_params_out`, is refused: those act on the text encoder's output, not its input);
- a flattened A1111 dict in a .safetensors file (`string_to_param.*`);
- any single tensor, bare or under one key (diffusers `{"<token>": [n, dim]}`; 1-D means n = 1).
The prompt word is the file stem (A1111), except for images, whose word is the `name` stored inside.
Vectors must be finite and below MAX_ABS, and at most MAX_VECTORS of them; a file that breaks this is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from oneword.embeddings.embedding import MAX_ABS, MAX_VECTORS, SDXL_KEYS, SINGLE_KEY, Embedding
from oneword.errors import OnewordError

A1111_TOKEN = 265
"""The token id A1111 writes in `string_to_token` (left over from the original TI code; nothing reads it)."""
MAX_DIGITS = 20
"""A longer `step` is no step count (and Python refuses to read integers of over 4,300 digits): unknown."""
SINGLE_KEYS = ("emb_params", "emp_params", "string_to_param.*")
"""Flat keys of single-encoder vectors: kohya, OneTrainer, and an A1111 dict flattened into .safetensors."""
OUTPUT_KEYS = {"emp_params": "emp_params_out", "clip_l": "clip_l_out", "clip_g": "clip_g_out"}
"""OneTrainer's output-embedding vectors beside its input ones (which are zeros in an output embedding)."""


class EmbeddingFileError(OnewordError):
    """A file that cannot be read as an embedding; `problem` is the reason without the file name."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def embedding_from_dict(
    data: Any, path: Path, *, name: str, metadata: Mapping[str, str] | None = None
) -> Embedding:
    """An Embedding from the contents of a file (a dict in one of the known layouts, or a bare tensor).

    `name` is the prompt word; `metadata` (a .safetensors header) supplies step and checkpoint when the dict does not.
    """
    if isinstance(data, torch.Tensor):
        return Embedding(name=name, vectors={SINGLE_KEY: _vectors(data, "the tensor", path)}, source=path)
    if not isinstance(data, Mapping):
        raise EmbeddingFileError(path, f"not an embedding: it holds a {type(data).__name__}, not a dict of tensors")
    vectors = _find_vectors(data, path)
    meta = {**(metadata or {}), **{k: v for k, v in data.items() if not isinstance(v, torch.Tensor)}}
    return Embedding(
        name=name,
        vectors=vectors,
        step=_int_or_none(meta.get("step")),
        sd_checkpoint=_str_or_none(meta.get("sd_checkpoint")),
        sd_checkpoint_name=_str_or_none(meta.get("sd_checkpoint_name")),
        source=path,
    )


def _find_vectors(data: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor]:
    if "string_to_param" in data:
        params = data["string_to_param"]
        if isinstance(params, torch.nn.ParameterDict):  # the original TI code's container
            params = vars(params).get("_parameters")  # its own lookup methods differ across torch versions
        if not isinstance(params, Mapping) or len(params) != 1:
            count = len(params) if isinstance(params, Mapping) else type(params).__name__
            raise EmbeddingFileError(path, f"string_to_param must hold exactly one tensor, it holds {count}")
        return {SINGLE_KEY: _vectors(next(iter(params.values())), "string_to_param", path)}
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    _refuse_output_embedding(tensors, path)
    if all(key in tensors for key in SDXL_KEYS):
        extra = sorted(str(k) for k in tensors if k not in SDXL_KEYS and k not in ("clip_l_out", "clip_g_out"))
        if extra:
            raise EmbeddingFileError(
                path, f"not an SDXL embedding: beside clip_l and clip_g it holds {', '.join(extra)}"
            )
        vectors = {key: _vectors(tensors[key], key, path) for key in SDXL_KEYS}
        if vectors["clip_l"].shape[0] != vectors["clip_g"].shape[0]:
            raise EmbeddingFileError(
                path, f"clip_l has {vectors['clip_l'].shape[0]} vectors but clip_g has {vectors['clip_g'].shape[0]}"
            )
        return vectors
    for key in SINGLE_KEYS:
        if key in tensors:
            return {SINGLE_KEY: _vectors(tensors[key], key, path)}
    if len(tensors) == 1:
        key, tensor = next(iter(tensors.items()))
        return {SINGLE_KEY: _vectors(tensor, repr(key), path)}
    if not tensors:
        raise EmbeddingFileError(path, "not an embedding: it holds no tensors")
    if any(key in tensors for key in SDXL_KEYS):
        raise EmbeddingFileError(path, "an SDXL embedding needs both clip_l and clip_g; it holds only "
                                 + ", ".join(sorted(map(str, tensors))))
    shown = ", ".join(sorted(map(str, tensors))[:5]) + (", ..." if len(tensors) > 5 else "")
    raise EmbeddingFileError(
        path,
        f"not an embedding: {len(tensors)} tensors ({shown}); expected string_to_param, clip_l + clip_g, "
        "emb_params, emp_params or a single tensor",
    )


def _refuse_output_embedding(tensors: Mapping[Any, torch.Tensor], path: Path) -> None:
    """OneTrainer output embeddings keep zeros where the input vectors go: refuse them rather than load zeros."""
    for key, out in OUTPUT_KEYS.items():
        if key in tensors and out in tensors and not tensors[key].any() and tensors[out].any():
            raise EmbeddingFileError(
                path, f"a OneTrainer output embedding: its vectors ({out}) replace the text encoder's output, "
                f"which A1111, diffusers and oneword do not support, and its input vectors ({key}) are all zero")


def _vectors(tensor: Any, what: str, path: Path) -> torch.Tensor:
    """A stored tensor as (n_vectors, width) float32 on the CPU, in memory of its own, checked to be usable."""
    if not isinstance(tensor, torch.Tensor):
        raise EmbeddingFileError(path, f"{what} is a {type(tensor).__name__}, not a tensor")
    if not tensor.is_floating_point():
        raise EmbeddingFileError(path, f"{what} holds {tensor.dtype} numbers, not floats")
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)  # diffusers stores one vector as [dim]
    if tensor.dim() != 2 or 0 in tensor.shape:
        raise EmbeddingFileError(path, f"{what} has shape {list(tensor.shape)}, expected [n_vectors, width]")
    if tensor.shape[0] > MAX_VECTORS:
        raise EmbeddingFileError(path, f"{what} has {tensor.shape[0]} vectors; a prompt chunk holds "
                                       f"{MAX_VECTORS} tokens, so an embedding can have at most {MAX_VECTORS}")
    problem = _storage_problem(tensor)
    if problem:
        raise EmbeddingFileError(path, f"{what} {problem}")
    vectors = tensor.detach().to(device="cpu", dtype=torch.float32).clone().contiguous()
    if not torch.isfinite(vectors).all():
        raise EmbeddingFileError(path, f"{what} holds NaN or infinite values")
    largest = float(vectors.abs().max())
    if largest > MAX_ABS:
        raise EmbeddingFileError(path, f"{what} holds values as large as {largest:.3g} (usable vectors stay "
                                       f"far below {MAX_ABS:g})")
    return vectors


def _storage_problem(tensor: torch.Tensor) -> str:
    """Why a tensor's numbers cannot be read as they are stored (checked before they are copied), or ""."""
    if tensor.layout != torch.strided:
        return f"is a {str(tensor.layout).removeprefix('torch.')} tensor, not a dense one"
    if tensor.is_meta:
        return "is on the meta device: the file holds no numbers for it"
    needed, stored = tensor.numel() * tensor.element_size(), tensor.untyped_storage().nbytes()
    if needed > stored:
        return f"claims {needed} bytes of numbers but the file stores only {stored} (an expanded view)"
    return ""


def a1111_dict(embedding: Embedding) -> dict[str, Any]:
    """The dict A1111 writes: its `string_to_param` layout, or SDXL's `clip_l`/`clip_g` with nothing else.

    A1111 loads an SDXL file by calling `.detach()` on every value, so an SDXL dict must hold only the two tensors.
    """
    vectors = stored_vectors(embedding)
    if embedding.is_sdxl:
        return {key: vectors[key] for key in SDXL_KEYS}
    return {
        "string_to_token": {SINGLE_KEY: A1111_TOKEN},
        "string_to_param": {SINGLE_KEY: vectors[SINGLE_KEY]},
        "name": embedding.name,
        "step": embedding.step,
        "sd_checkpoint": embedding.sd_checkpoint,
        "sd_checkpoint_name": embedding.sd_checkpoint_name,
    }


def stored_vectors(embedding: Embedding) -> dict[str, torch.Tensor]:
    """The vectors as float32 CPU tensors with storage of their own (torch.save writes a view's whole storage)."""
    return {key: tensor.detach().to(device="cpu", dtype=torch.float32).clone().contiguous()
            for key, tensor in embedding.vectors.items()}


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        return int(value.item())
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) <= MAX_DIGITS:
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
