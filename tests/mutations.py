"""Damaged copies of valid files, made deterministically from a seeded generator: cut short, bits flipped,
safetensors headers and PNG chunks edited, tensors given other shapes and types."""

from __future__ import annotations

import base64
import io
import json
import math
import random
import struct
import zlib
from collections.abc import Callable

import torch

Mutation = Callable[[bytes, random.Random], bytes]


def truncate(data: bytes, rng: random.Random) -> bytes:
    """Cut at a random offset (the first bytes more often: headers are where readers decide)."""
    end = rng.randrange(min(len(data), 256)) if rng.random() < 0.4 else rng.randrange(len(data))
    return data[:end]


def flip_bits(data: bytes, rng: random.Random) -> bytes:
    """Flip 1 to 8 random bits, half of the time among the first 512 bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(min(len(out), 512)) if rng.random() < 0.5 else rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _header(data: bytes) -> tuple[dict, bytes]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def _with_header(header: object, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


DTYPES = ["F16", "BF16", "F64", "I64", "I8", "U8", "BOOL", "F8_E4M3", "C64", "XX", 7, None]
SHAPES = [[], [0], [-1], [2**40], [3, 2**40], [1, 1, 1, 1], "big", "flat", "flat", "deeper", "deeper", [1.5], None]
"""New shapes: impossible ones, and ("flat", "deeper") the same numbers in one or one more dimension."""
OFFSETS = [[0, 2**62], [-1, 4], [8, 4], [0, 0], [1, 1], "x", [0], None]
METADATA = [{"step": "9" * 5000}, {"step": "-1"}, {"name": "\x00" * 40}, {"format": "oneword-hypernetwork"},
            {"layer_structure": "[1, 2"}, {"activation_func": "\"nope\""}, {"sd_checkpoint": "x" * 10_000},
            {str(i): "v" for i in range(500)}, [], "text", 5]


def edit_safetensors_header(data: bytes, rng: random.Random) -> bytes:
    """One field of a safetensors header changed: a tensor's dtype, shape or offsets, the metadata, the length."""
    header, body = _header(data)
    names = [k for k in header if k != "__metadata__"]
    choice = rng.randrange(6)
    if choice == 5:  # the 8-byte length itself
        size = int.from_bytes(data[:8], "little")
        return rng.choice([0, 1, size + 1, size - 1, 2**63, len(data)]).to_bytes(8, "little") + data[8:]
    if choice == 4:
        meta = rng.choice(METADATA)
        header["__metadata__"] = {**header.get("__metadata__", {}), **meta} if isinstance(meta, dict) else meta
        return _with_header(header, body)
    entry = header[rng.choice(names)]
    if choice == 0:
        entry["dtype"] = rng.choice(DTYPES)
    elif choice == 1:
        shape, old = rng.choice(SHAPES), entry["shape"]
        count = math.prod(old)
        entry["shape"] = {"big": [*reversed(old), 2], "flat": [count], "deeper": [*old, 1]}.get(shape, shape) \
            if isinstance(shape, str) else shape
    elif choice == 2:
        entry["data_offsets"] = rng.choice(OFFSETS)
    else:
        del entry[rng.choice(["dtype", "shape", "data_offsets"])]
    return _with_header(header, body)


def _tensor_variant(tensor: torch.Tensor, rng: random.Random) -> object:
    n = tensor.numel()
    return rng.choice([
        lambda: tensor.reshape(1, 1, n), lambda: tensor.reshape(-1)[:0], lambda: tensor.to(torch.int64),
        lambda: tensor.to(torch.complex64), lambda: tensor > 0, lambda: tensor.half(), lambda: tensor.t(),
        lambda: tensor.reshape(-1)[: max(1, n // 2)], lambda: torch.zeros(2, 3, 4), lambda: "a string",
        lambda: [1.0, 2.0], lambda: None, lambda: {"inner": tensor}, lambda: tensor.repeat(80, 1)[:80],
    ])()


def edit_pickle_tensors(data: bytes, rng: random.Random) -> bytes:
    """A torch.save file whose dict has one tensor (or another value) replaced by something of another shape or
    type, written back with torch.save."""
    loaded = torch.load(io.BytesIO(data), weights_only=True)
    slots: list[tuple[object, object]] = []

    def collect(container: object) -> None:
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in list(items):
            if isinstance(value, torch.Tensor) or not isinstance(value, (dict, list, tuple)):
                slots.append((container, key))
            elif isinstance(value, (dict, list)):
                collect(value)
            else:  # a tuple (a hypernetwork's K, V pair) becomes a list, editable in place
                container[key] = list(value)
                collect(container[key])

    collect(loaded)
    container, key = rng.choice(slots)
    value = container[key]
    container[key] = _tensor_variant(value, rng) if isinstance(value, torch.Tensor) else rng.choice(
        [None, "x" * 100, 10**30, -1, [], {}, torch.ones(3)])
    out = io.BytesIO()
    torch.save(loaded, out)
    return out.getvalue()


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        chunks.append((kind, data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


JSON_EDITS: list[Callable[[dict], object]] = [
    lambda d: {**d, "string_to_param": {"*": {"TORCHTENSOR": [[[[1.0]]]]}}},
    lambda d: {**d, "string_to_param": {"*": {"TORCHTENSOR": [[1.0], [1.0, 2.0]]}}},
    lambda d: {**d, "string_to_param": {"*": {"TORCHTENSOR": [["a", "b"]]}}},
    lambda d: {**d, "string_to_param": {"*": {"TORCHTENSOR": [[10**400]]}}},
    lambda d: {**d, "string_to_param": {"*": {"TORCHTENSOR": []}}},
    lambda d: {**d, "string_to_param": {"*": {"TORCHTENSOR": 5}}},
    lambda d: {**d, "string_to_param": {"*": [[1.0, 2.0]]}},
    lambda d: {**d, "step": "9" * 5000, "name": 7},
    lambda d: {**d, "name": ["list"]},
    lambda d: [d],
    lambda d: "text",
    lambda d: {**d, "string_to_param": {"*": {"TORCHTENSOR": [[float("nan"), float("inf")]]}}},
]


def edit_png(data: bytes, rng: random.Random) -> bytes:
    """A PNG with a chunk edited and its CRC made right again: the size in IHDR, or the embedding's JSON in the
    sd-ti-embedding text chunk (other shapes, types, nesting)."""
    chunks = _chunks(data)
    texts = [i for i, (kind, body) in enumerate(chunks) if kind == b"tEXt" and body.startswith(b"sd-ti-embedding\0")]
    if texts and rng.random() < 0.6:
        i = texts[0]
        key, value = chunks[i][1].split(b"\0", 1)
        edited = rng.choice(JSON_EDITS)(json.loads(base64.b64decode(value)))
        raw = rng.choice([b"{" * 100_000, b"[" * 100_000 + b"]" * 100_000])  # cut short, or nested too deep
        text = json.dumps(edited).encode() if rng.random() < 0.8 else raw
        chunks[i] = (b"tEXt", key + b"\0" + base64.b64encode(text))
        return _png(chunks)
    width, height = struct.unpack(">II", chunks[0][1][:8])
    new = rng.choice([(13000, 13000), (width * 2, height), (0, height), (2**31 - 1, 1), (width, height + 1)])
    chunks[0] = (b"IHDR", struct.pack(">II", *new) + chunks[0][1][8:])
    return _png(chunks)


MEMORY_GUARD = 1 << 30
"""Bytes the peak memory may grow by over a whole scan of hostile files: a guard against decompression bombs,
not a measure."""


def peak_bytes() -> int:
    """The process's peak resident memory so far, in bytes."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
