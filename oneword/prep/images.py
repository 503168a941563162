"""Open any picture a user may have: upright, 8-bit RGB or RGBA, first frame, or one line saying why not."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from oneword.folder_walk import unreadable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class BadImage(Exception):
    """A file that cannot be used as a picture; the message says why (without the path)."""


def source_files(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """The picture files directly in `folder` (by suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def source_entries(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
                   ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The picture files directly in `folder` (by suffix), sorted by name, and the entries with a picture's name
    that cannot be read as one (a dangling link, a link loop, a folder, a FIFO, a device), with the reason.

    Nothing is opened: a FIFO would block and a device would never end.
    """
    files, unusable = [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes):
        problem = unreadable(path)
        if problem is None:
            files.append(path)
        else:
            unusable.append((path, problem))
    return files, unusable


def open_image(path: Path, max_pixels: int | None = None) -> Image.Image:
    """The picture in `path`, decoded whole: EXIF rotation applied, the first frame of an animation, RGB or RGBA.

    Transparency is kept (RGBA) when the picture has any; 16-bit and CMYK pictures are converted properly.
    Raises BadImage for empty, truncated, unrecognised or oversized files (over `max_pixels`, by default PIL's
    decompression-bomb limit).
    """
    limit = max_pixels or Image.MAX_IMAGE_PIXELS
    if path.stat().st_size == 0:
        raise BadImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                if limit and opened.width * opened.height > limit:
                    raise Image.DecompressionBombError
                opened.seek(0)
                image = ImageOps.exif_transpose(opened)
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"over {limit:,} pixels (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise BadImage("not a picture PIL can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise BadImage(f"cannot be decoded: {error}") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, or RGBA when the picture has transparency that is not fully opaque."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    if has_alpha and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert("RGB")
    return image
