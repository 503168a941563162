"""Labelled image grids (the "no embedding / 500 / 1000 / ... steps" comparison)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont


def labelled_grid(columns: list[tuple[str, list[Image.Image]]], label_height: int = 24) -> Image.Image:
    """One column per (label, images) pair, the label on top; all images must share one size."""
    width, height = columns[0][1][0].size
    rows = max(len(images) for _, images in columns)
    grid = Image.new("RGB", (width * len(columns), label_height + height * rows), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for c, (label, images) in enumerate(columns):
        text = _fit(draw, label, font, width - 4)
        draw.text((c * width + 2, 4), text, fill="black", font=font)
        for r, image in enumerate(images):
            grid.paste(image, (c * width, label_height + r * height))
    return grid


def _fit(draw: ImageDraw.ImageDraw, text: str, font, max_width: int) -> str:
    while text and draw.textlength(text, font=font) > max_width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text
