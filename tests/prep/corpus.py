"""Pictures of every awkward kind a user's folder can hold, generated in the test (no files shipped)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def halves(size: tuple[int, int], first, second, *, vertical: bool = False) -> Image.Image:
    """Left half `first`, right half `second` (top and bottom with `vertical`)."""
    image = Image.new("RGB", size, second)
    w, h = size
    ImageDraw.Draw(image).rectangle((0, 0, w - 1, h // 2 - 1) if vertical else (0, 0, w // 2 - 1, h - 1), fill=first)
    return image


def exif_rotated_jpeg(path: Path) -> None:
    """Stored 160x80, left half red; orientation 6 means "rotate 90 degrees clockwise to view": upright it is
    80x160 with the red half on top."""
    image = halves((160, 80), RED, BLUE)
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, "JPEG", exif=exif, quality=95)


def palette_png_with_transparency(path: Path) -> None:
    image = Image.new("P", (96, 96), 0)
    image.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    ImageDraw.Draw(image).ellipse((16, 16, 80, 80), fill=1)
    image.save(path, transparency=0)


def png_16_bit(path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 96).astype(np.uint16), (96, 1))
    image = Image.fromarray(ramp)
    assert image.mode.startswith("I;16")
    image.save(path)


def cmyk_jpeg(path: Path) -> None:
    Image.new("CMYK", (96, 96), (0, 255, 255, 0)).save(path, "JPEG", quality=95)  # red in CMYK


def grayscale(path: Path) -> None:
    Image.new("L", (96, 96), 128).save(path)


def animated(path: Path) -> None:
    frames = [Image.new("RGB", (96, 96), c) for c in (RED, GREEN, BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def truncated_png(path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def face(size: int = 200) -> Image.Image:
    """A drawn face OpenCV's frontal-face cascades find: light oval, dark brows, eyes and mouth, light nose bridge."""
    image = Image.new("L", (size, int(size * 1.25)), 70)
    draw = ImageDraw.Draw(image)
    w, h = image.size
    draw.ellipse((0.08 * w, 0.05 * h, 0.92 * w, 0.98 * h), fill=190)
    for cx in (0.32, 0.68):
        draw.rectangle(((cx - 0.14) * w, 0.30 * h, (cx + 0.14) * w, 0.34 * h), fill=40)
        draw.ellipse(((cx - 0.10) * w, 0.39 * h, (cx + 0.10) * w, 0.47 * h), fill=30)
    draw.rectangle((0.45 * w, 0.45 * h, 0.55 * w, 0.66 * h), fill=215)
    draw.ellipse((0.40 * w, 0.64 * h, 0.60 * w, 0.70 * h), fill=110)
    draw.ellipse((0.30 * w, 0.76 * h, 0.70 * w, 0.84 * h), fill=60)
    return image.filter(ImageFilter.GaussianBlur(size / 60)).convert("RGB")


def face_at_the_right(path: Path) -> tuple[int, int, int, int]:
    """An 800x400 picture with a face near its right edge; returns the face's box."""
    canvas = Image.new("RGB", (800, 400), (120, 120, 120))
    box = (610, 100, 770, 300)
    canvas.paste(face().resize((box[2] - box[0], box[3] - box[1])), box[:2])
    canvas.save(path)
    return box


def write_corpus(folder: Path) -> dict[str, str]:
    """Every kind of file, good and bad; returns file name -> what should happen ("ok" or "skip")."""
    folder.mkdir(parents=True, exist_ok=True)
    exif_rotated_jpeg(folder / "rotated.jpg")
    palette_png_with_transparency(folder / "palette.png")
    png_16_bit(folder / "deep.png")
    cmyk_jpeg(folder / "cmyk.jpg")
    grayscale(folder / "gray.png")
    animated(folder / "animated.gif")
    animated(folder / "animated.webp")
    truncated_png(folder / "truncated.png")
    (folder / "zero.png").write_bytes(b"")
    (folder / "notes.png").write_text("not a picture")
    Image.new("RGB", (600, 120), RED).save(folder / "wide.png")
    Image.new("RGB", (120, 600), BLUE).save(folder / "tall.png")
    Image.new("RGB", (12, 12), GREEN).save(folder / "tiny.png")
    Image.new("RGB", (400, 400), GREEN).save(folder / "bomb.png")  # over the limit the tests set
    return {
        "rotated.jpg": "ok", "palette.png": "ok", "deep.png": "ok", "cmyk.jpg": "ok", "gray.png": "ok",
        "animated.gif": "ok", "animated.webp": "ok", "wide.png": "ok", "tall.png": "ok",
        "truncated.png": "skip", "zero.png": "skip", "notes.png": "skip", "tiny.png": "skip", "bomb.png": "skip",
    }
