"""Labelled image grids (the "no embedding / step 500 / step 1000 / ..." comparison)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

OUTLINE = (230, 40, 40)
"""The outline of the marked column (previews.png outlines the chosen step in the same red)."""
MARGIN, LINE_GAP, BORDER = 2, 2, 3


def labelled_grid(columns: list[tuple[str, list[Image.Image]]], label_height: int = 0,
                  outlined: int | None = None) -> Image.Image:
    """One column per (label, images) pair, the label on top (at least `label_height` pixels), the column `outlined`
    (an index) outlined in red.

    A label never loses a character: it wraps at spaces onto as many lines as it needs, and a column is widened
    (its images centred) when one word of its label is wider than the images. All images must share one size."""
    width, height = columns[0][1][0].size
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [max(width, *(_wide(draw, word, font) + 2 * MARGIN for word in label.split())) for label, _ in columns]
    lines = [_wrap(draw, label, font, w - 2 * MARGIN) for (label, _), w in zip(columns, widths)]
    line_height = font.getbbox("Ag")[3] + LINE_GAP
    label_height = max(label_height, 2 * MARGIN + line_height * max(len(text) for text in lines))
    rows = max(len(images) for _, images in columns)
    grid = Image.new("RGB", (sum(widths), label_height + height * rows), "white")
    draw = ImageDraw.Draw(grid)
    x = 0
    for c, ((_, images), text, w) in enumerate(zip(columns, lines, widths)):
        for n, line in enumerate(text):
            draw.text((x + MARGIN, MARGIN + n * line_height), line, fill="black", font=font)
        for r, image in enumerate(images):
            grid.paste(image, (x + (w - width) // 2, label_height + r * height))
        if c == outlined:
            draw.rectangle((x, label_height, x + w - 1, grid.height - 1), outline=OUTLINE, width=BORDER)
        x += w
    return grid


def _wide(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    return int(-(-draw.textlength(text, font=font) // 1))


def _wrap(draw: ImageDraw.ImageDraw, label: str, font, max_width: int) -> list[str]:
    """The label's words in lines no wider than `max_width` (a word wider than that gets a line of its own)."""
    lines: list[str] = []
    for word in label.split():
        if lines and _wide(draw, f"{lines[-1]} {word}", font) <= max_width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]
