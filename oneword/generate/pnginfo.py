"""The A1111 `parameters` PNG text chunk: what PNG Info and prompt readers show."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from oneword.files import atomic_write

if TYPE_CHECKING:
    from oneword.embeddings.embedding import Embedding


@dataclass(frozen=True)
class ImageParameters:
    """Everything needed to draw an image again, in A1111's order."""

    prompt: str
    negative: str
    steps: int
    sampler: str
    """A1111's display name, e.g. `Euler a`."""
    cfg: float
    seed: int
    width: int
    height: int
    model_hash: str
    model_name: str
    extra: tuple[tuple[str, str], ...] = ()


def format_parameters(p: ImageParameters) -> str:
    """A1111's text: prompt, `Negative prompt:` line, then `Steps: 20, Sampler: ..., CFG scale: 7, ...`."""
    fields = [
        ("Steps", str(p.steps)),
        ("Sampler", p.sampler),
        ("CFG scale", f"{p.cfg:g}"),
        ("Seed", str(p.seed)),
        ("Size", f"{p.width}x{p.height}"),
        ("Model hash", p.model_hash),
        ("Model", p.model_name),
        *p.extra,
    ]
    lines = [p.prompt]
    if p.negative:
        lines.append(f"Negative prompt: {p.negative}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields))
    return "\n".join(lines)


def _quote(value: str) -> str:
    # A1111 quotes values that contain the separators (its `quote` in generation_parameters_copypaste).
    if "," not in value and ":" not in value and "\n" not in value:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ti_hashes(embeddings: Sequence[Embedding]) -> tuple[tuple[str, str], ...]:
    """A1111's `TI hashes: "NAME: HASH12, ..."` (modules/sd_hijack_clip.py): each embedding a prompt used, by its
    word without `:` and `,`, with the first 12 hex digits of its file's SHA-256 (textual_inversion.py), in the
    order the prompt and then the negative prompt first use them. One not read from a file (a LoRA's bundled
    word, a training run's current vectors) has no hash and is left out, as in A1111."""
    pairs: dict[str, str] = {}
    for embedding in embeddings:
        if embedding.source is None:
            continue
        try:
            digest = hashlib.sha256(Path(embedding.source).read_bytes()).hexdigest()
        except OSError:  # gone since it was read: no hash to give
            continue
        pairs.setdefault(embedding.name.replace(":", "").replace(",", ""), digest[:12])
    hashes = ", ".join(f"{name}: {short}" for name, short in pairs.items())
    return (("TI hashes", hashes),) if hashes else ()


def save_png(image: Image.Image, path: Path, parameters: str, *, overwrite: bool = True) -> None:
    """Save `image` as PNG with the `parameters` text chunk, atomically; without `overwrite` an existing file is
    never replaced (FileExistsError)."""
    info = PngInfo()
    info.add_text("parameters", parameters)
    atomic_write(Path(path), lambda f: image.save(f, format="PNG", pnginfo=info), overwrite=overwrite)


def read_parameters(path: Path) -> str | None:
    """The `parameters` text of an image, or None."""
    with Image.open(path) as im:
        return im.info.get("parameters")
