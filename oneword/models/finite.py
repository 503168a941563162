"""The check that a base model's weights are numbers: a NaN or infinite weight makes every picture black (or NaN),
so a model holding one is refused as it loads, naming the weight, as an embedding holding one is."""

from __future__ import annotations

import torch

CHUNK = 1 << 20
"""Values checked at once: the check's own memory is one byte per value of a chunk (1 MiB, which stays in the CPU's
cache: faster than larger chunks), whatever the size of the tensor."""


def all_finite(tensor: torch.Tensor, chunk: int = CHUNK) -> bool:
    """Whether every value of `tensor` is finite (integer tensors always are), read `chunk` values at a time."""
    if not tensor.is_floating_point():
        return True
    flat = tensor.reshape(-1)  # a view of a contiguous tensor: nothing copied
    return all(bool(torch.isfinite(flat[start:start + chunk]).all()) for start in range(0, flat.numel(), chunk))


def non_finite_problem(key: str, tensor: torch.Tensor) -> str | None:
    """`the weight KEY holds NaN or infinite values`, or None when all its values are finite."""
    return None if all_finite(tensor) else f"the weight {key} holds NaN or infinite values"
