"""An embedding hidden in a preview image, A1111's `image_embeddings/` layout, written and read.

The data is A1111's embedding dict as JSON, each tensor written as {"TORCHTENSOR": nested lists}. It is stored
twice: base64 in a PNG text chunk `sd-ti-embedding`, and in the pixels, which survive tools that drop text
chunks (but not lossy compression): the JSON, zlib-compressed, split into low and high 4-bit halves, each laid
out as an (H, W', 3) block beside the preview (low left, high right, each behind a 1 px black column), XOR-ed
with a linear congruential stream; a dot pattern drawn from the first vector fills the high 4 bits.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin, UnidentifiedImageError

from oneword.embeddings.embedding import SDXL_KEYS, SINGLE_KEY, Embedding
from oneword.embeddings.layouts import EmbeddingFileError, a1111_dict, embedding_from_dict
from oneword.files import atomic_write

TEXT_KEY = "sd-ti-embedding"
"""Name of the PNG text chunk that holds the embedding as base64 JSON."""
TENSOR_KEY = "TORCHTENSOR"

LCG_M, LCG_A, LCG_C = 2**32, 1664525, 1013904223
"""Numerical Recipes' generator, seed 0; A1111 uses each value modulo 255, masked to its low 4 bits."""
_CHANNELS = 3
MAX_JSON = 8 * 2**20
"""The most embedding JSON an image may hold: the largest real embedding, SDXL with 75 vectors of 768 + 1280
floats, is 153,600 floats of at most 25 characters each ("-1.1754943508222875e-38, "), 3.84 MB; twice that.
Hidden data that inflates beyond it is a compressed bomb, not an embedding, and is not inflated further."""
MAX_TEXT = 4 * -(-MAX_JSON // 3)
"""The longest `sd-ti-embedding` text: MAX_JSON in base64."""
MAX_PIXELS = 8 * 2**20
"""The most pixels an embedding image may have: a 2048x2048 preview (4.2 million) beside the data blocks of the
largest embedding (at most 2 x 3.84 MB / 3 nibbles a pixel, 2.6 million). Larger images are not decoded."""


def embedding_json(embedding: Embedding) -> str:
    """A1111's JSON of an embedding: its .pt dict (SDXL: clip_l and clip_g only) with tensors as nested lists."""

    def encode(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return {TENSOR_KEY: value.detach().cpu().tolist()}
        raise TypeError(f"cannot write {type(value).__name__} in an embedding image")

    return json.dumps(a1111_dict(embedding), default=encode)


def decode_embedding_json(text: str | bytes) -> Any:
    """The dict of an embedding JSON, its {"TORCHTENSOR": lists} turned back into tensors."""

    def hook(d: dict[str, Any]) -> Any:
        if TENSOR_KEY in d:
            return torch.from_numpy(np.array(d[TENSOR_KEY]))
        return d

    return json.loads(text, object_hook=hook)


def lcg_stream(count: int) -> np.ndarray:
    """The first `count` values of A1111's stream: x <- (a x + c) mod 2^32 from x = 0, each taken modulo 255."""
    block = 1024
    first = np.empty(block, dtype=np.uint32)
    x = 0
    for i in range(block):
        x = (LCG_A * x + LCG_C) % LCG_M
        first[i] = x
    # Jump `block` steps at once: x[k + block] = A x[k] + C (mod 2^32), with uint32 arithmetic wrapping mod 2^32.
    jump_a, jump_c = 1, 0
    for _ in range(block):
        jump_a, jump_c = (LCG_A * jump_a) % LCG_M, (LCG_A * jump_c + LCG_C) % LCG_M
    rows = [first]
    with np.errstate(over="ignore"):
        for _ in range(1, -(-count // block)):
            rows.append(rows[-1] * np.uint32(jump_a) + np.uint32(jump_c))
    return (np.concatenate(rows)[:count] % 255).astype(np.uint8)


def _xor_stream(block: np.ndarray) -> np.ndarray:
    """XOR a block with the low 4 bits of the stream, in C order (its own inverse)."""
    return block ^ (lcg_stream(block.size).reshape(block.shape) & 0x0F)


def _dot_pattern(block: np.ndarray, shades: np.ndarray) -> np.ndarray:
    """Put A1111's grid of 6 px dots, shaded by `shades` in turn, into the high 4 bits of a (H, W, 3) block."""
    height, width = block.shape[:2]
    canvas = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(canvas)
    i = 0
    for x in range(-6, width, 8):
        for row, y in enumerate(range(-6, height, 8)):
            offset = 4 if row % 2 == 0 else 0
            shade = int(shades[i % len(shades)])
            draw.ellipse((x + offset, y, x + 6 + offset, y + 6), fill=(shade, shade, shade))
            i += 1
    return block | (np.asarray(canvas, dtype=np.uint8) & 0xF0)


def _shades(embedding: Embedding) -> np.ndarray:
    """Dot shades: |first vector| (its first 1024 values) scaled to 0..255."""
    key = SINGLE_KEY if not embedding.is_sdxl else SDXL_KEYS[0]
    first = embedding.vectors[key][0, :1024].detach().cpu().double().abs().numpy()
    peak = first.max()
    return np.zeros_like(first, dtype=np.uint8) if peak == 0 else (first / peak * 255).astype(np.uint8)


def add_data_blocks(image: Image.Image, embedding: Embedding) -> Image.Image:
    """The image with the embedding's data blocks on both sides (A1111's `insert_image_data_embed` layout)."""
    packed = np.frombuffer(zlib.compress(embedding_json(embedding).encode(), level=9), dtype=np.uint8)
    height = image.size[1]
    # Round up to whole rows, then to whole (H, W', 3) blocks; A1111 always adds at least one row, and np.resize
    # fills the extra by repeating the data (the reader's inflate ignores what follows the stream).
    size = packed.size + (height - packed.size % height)
    size += height * _CHANNELS - size % (height * _CHANNELS)
    shades = _shades(embedding)
    low = np.resize(packed & 0x0F, size).reshape(height, -1, _CHANNELS)
    high = np.resize(packed >> 4, size).reshape(height, -1, _CHANNELS)
    low = _xor_stream(_dot_pattern(low, shades))
    high = _xor_stream(_dot_pattern(high, shades[::-1]))
    width = low.shape[1]
    out = Image.new("RGB", (image.size[0] + 2 * width + 2, height), (0, 0, 0))
    out.paste(Image.fromarray(low, mode="RGB"), (0, 0))
    out.paste(image.convert("RGB"), (width + 1, 0))
    out.paste(Image.fromarray(high, mode="RGB"), (width + 1 + image.size[0] + 1, 0))
    return out


def extract_data_blocks(image: Image.Image) -> bytes | None:
    """The JSON hidden in an image's pixels, or None when it holds none (A1111's `extract_image_data_embed`)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    lit = (pixels > 0).all(axis=2)
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    if rows.size == 0:
        return None
    nibbles = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] & 0x0F  # crop the black border
    black = np.flatnonzero(nibbles.sum(axis=(0, 2)) == 0)
    if black.size < 2:
        return None
    low, high = nibbles[:, : black[0]], nibbles[:, black[-1] + 1 :]
    if low.size == 0 or low.shape != high.shape:
        return None
    packed = (_xor_stream(high) << 4) | _xor_stream(low)
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(packed.tobytes(), MAX_JSON)
    except zlib.error:
        return None
    if not inflate.eof and inflate.unconsumed_tail:
        raise HiddenDataTooLarge(f"the data in the pixels inflates to more than {MAX_JSON:,} bytes, more than any "
                                 "embedding needs (a compressed bomb?); not read further")
    return data if inflate.eof else None


class HiddenDataTooLarge(ValueError):
    """Hidden data larger than any embedding can need; the message says which and how large."""


def caption(image: Image.Image, title: str, left: str, middle: str, right: str) -> Image.Image:
    """A1111's preview caption: top and bottom darkened, the title on top, three footers at the bottom."""
    width, height = image.size
    shade = Image.new("RGBA", (1, height))
    for y in range(height):
        top = 1 - math.cos(y / height * 1.5)
        bottom = 1 - math.cos((height - y) / height * 1.5 * 1.1)
        shade.putpixel((0, y), (0, 0, 0, min(255, int(max(top, bottom) * 255))))
    out = Image.alpha_composite(image.convert("RGBA"), shade.resize(image.size))
    draw = ImageDraw.Draw(out)
    padding, fill = 10, (255, 255, 255, 230)

    def text_width(text: str, size: int) -> int:
        box = draw.textbbox((0, 0), text, font=ImageFont.load_default(size))
        return max(1, int(box[2] - box[0]))

    size = max(1, min(int(32 * (width * 0.75 - padding * 4) / text_width(title, 32)), 72))
    font = ImageFont.load_default(size)
    box = draw.textbbox((0, 0), title, font=font)
    draw.text((padding - box[0], padding - box[1]), title, font=font, fill=fill)
    feet = [text for text in (left, middle, right) if text]
    if feet:
        size = max(1, min(min(int(size * (width / 3 - padding) / text_width(t, size)) for t in feet), 72))
    font = ImageFont.load_default(size)
    for text, anchor_x in ((left, 0.0), (middle, 0.5), (right, 1.0)):
        box = draw.textbbox((0, 0), text, font=font)
        x = padding + anchor_x * (width - 2 * padding - (box[2] - box[0])) - box[0]
        draw.text((x, height - padding - box[3]), text, font=font, fill=fill)
    return out.convert("RGB")


def embed_in_png(
    image: Image.Image,
    embedding: Embedding,
    *,
    model_name: str | None = None,
    model_hash: str | None = None,
    steps: int | None = None,
) -> Image.Image:
    """A1111's preview with the embedding inside: the captioned image between the two data blocks.

    Caption: `<name>` on top; the model name, `[hash]` and `{n}v {steps}s` at the bottom (defaults: the embedding's
    own sd_checkpoint_name, sd_checkpoint and step). The text chunk is added when saving (`write_png_embedding`).
    """
    name = model_name if model_name is not None else embedding.sd_checkpoint_name or ""
    digest = model_hash if model_hash is not None else embedding.sd_checkpoint
    done = steps if steps is not None else embedding.step
    captioned = caption(
        image,
        f"<{embedding.name}>",
        name,
        f"[{digest}]" if digest else "",
        f"{embedding.n_vectors}v {done if done is not None else '?'}s",
    )
    return add_data_blocks(captioned, embedding)


def png_text(embedding: Embedding) -> PngImagePlugin.PngInfo:
    """The `sd-ti-embedding` text chunk: base64 of the embedding JSON."""
    info = PngImagePlugin.PngInfo()
    info.add_text(TEXT_KEY, base64.b64encode(embedding_json(embedding).encode()).decode("ascii"))
    return info


def write_png_embedding(
    embedding: Embedding,
    path: Path,
    preview: Image.Image,
    *,
    model_name: str | None = None,
    model_hash: str | None = None,
    steps: int | None = None,
) -> None:
    """Save `preview` as a PNG that A1111 and oneword load as the embedding (pixels and text chunk), atomically."""
    image = embed_in_png(preview, embedding, model_name=model_name, model_hash=model_hash, steps=steps)
    info = png_text(embedding)
    atomic_write(Path(path), lambda f: image.save(f, format="PNG", pnginfo=info))


def read_png_embedding(path: Path) -> Embedding | None:
    """The embedding inside a PNG/WebP (text chunk first, then pixels), or None when the image holds none.

    The work is bounded by what a real embedding image needs (MAX_PIXELS, MAX_TEXT, MAX_JSON): a larger image is
    not decoded and larger hidden data not inflated, each refused with the reason.
    """
    path = Path(path)
    try:
        hidden, pixels = _open_hidden(path)
        if hidden is not None:
            data = _from_text(hidden, path)
        else:
            raw = extract_data_blocks(pixels)
            if raw is None:
                return None
            data = _from_json(raw, path, "the data in the pixels")
    except HiddenDataTooLarge as e:
        raise EmbeddingFileError(path, str(e)) from None
    if not isinstance(data, dict):
        raise EmbeddingFileError(path, f"the hidden data is a {type(data).__name__}, not an embedding dict")
    name = data.get("name")
    return embedding_from_dict(data, path, name=name if isinstance(name, str) and name else path.stem)


def _open_hidden(path: Path) -> tuple[str | bytes | None, Image.Image | None]:
    """The `sd-ti-embedding` text, or else the decoded pixels; the pixels are decoded only when no text chunk
    comes before them and the image is no larger than MAX_PIXELS."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(path) as image:
                hidden = image.info.get(TEXT_KEY)  # text chunks before the pixel data, read without decoding
                if hidden is not None:
                    return hidden, None
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise HiddenDataTooLarge(f"{width}x{height} pixels, larger than an embedding image can be (at "
                                             f"most {MAX_PIXELS:,} pixels); not decoded")
                image.load()
                hidden = (getattr(image, "text", None) or {}).get(TEXT_KEY) or image.info.get(TEXT_KEY)
                return hidden, image.convert("RGB") if hidden is None else None
    except HiddenDataTooLarge:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise EmbeddingFileError(path, f"not a readable image ({e})") from None


def _from_text(text: str | bytes, path: Path) -> Any:
    if len(text) > MAX_TEXT:
        raise HiddenDataTooLarge(f"the {TEXT_KEY} text has {len(text):,} characters, more than any embedding needs "
                                 f"(at most {MAX_TEXT:,}); not read")
    try:
        raw = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as e:
        raise EmbeddingFileError(path, f"the {TEXT_KEY} text is not base64 ({e})") from None
    return _from_json(raw, path, f"the {TEXT_KEY} text")


def _from_json(raw: bytes, path: Path, what: str) -> Any:
    try:
        return decode_embedding_json(raw)
    except (ValueError, TypeError, RecursionError) as e:
        raise EmbeddingFileError(path, f"{what} is not embedding JSON ({str(e).splitlines()[0]})") from None
