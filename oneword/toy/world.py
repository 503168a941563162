"""The toy world: seeded renders of simple scenes, and captions that name (some of) what they show.

A scene is one shape on a plain background. Captions name the shape, colour, background, size and position,
with variations and dropped parts. Three shapes (star, cross, crescent) are never named: captions call them
"object", so no word selects one of them; they are the concepts embeddings learn. One style ("outline": the
shape drawn as a thick outline) appears in pre-training without ever being mentioned.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw, ImageFilter

NAMED_SHAPES = ("circle", "square", "triangle")
HIDDEN_SHAPES = ("star", "cross", "crescent")
SHAPES = NAMED_SHAPES + HIDDEN_SHAPES
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 205, 40),
    "purple": (150, 60, 200),
}
BACKGROUNDS = {"dark": (28, 28, 34), "light": (226, 226, 218)}
SIZES = {"small": 0.46, "large": 0.74}
"""Shape diameter as a fraction of the image side."""
POSITIONS = {
    "top left": (0.3, 0.3),
    "top right": (0.7, 0.3),
    "bottom left": (0.3, 0.7),
    "bottom right": (0.7, 0.7),
    "center": (0.5, 0.5),
}
STYLES = ("plain", "outline")
IMAGE_SIZE = 64
PREFIXES = ("", "a photo of ", "a picture of ", "an image of ", "a rendering of ", "a drawing of ")


@dataclass(frozen=True)
class Scene:
    """Everything a render depends on, apart from the sub-pixel jitter drawn from the seed."""

    shape: str
    colour: str
    background: str
    size: str
    position: str
    style: str = "plain"


def random_scene(rng: random.Random, *, hidden_rate: float = 0.25, style_rate: float = 0.12) -> Scene:
    """A scene with every factor uniform, a hidden shape with probability `hidden_rate`, outlined with `style_rate`."""
    shapes = HIDDEN_SHAPES if rng.random() < hidden_rate else NAMED_SHAPES
    size = rng.choice(tuple(SIZES))
    position = "center" if size == "large" else rng.choice(tuple(POSITIONS))
    return Scene(
        shape=rng.choice(shapes),
        colour=rng.choice(tuple(COLOURS)),
        background=rng.choice(tuple(BACKGROUNDS)),
        size=size,
        position=position,
        style="outline" if rng.random() < style_rate else "plain",
    )


def shape_word(shape: str) -> str:
    """The word captions use for a shape: its name, or "object" for the hidden ones."""
    return shape if shape in NAMED_SHAPES else "object"


def caption(scene: Scene, rng: random.Random, *, drop_rate: float = 0.15, generic_rate: float = 0.0) -> str:
    """A plain-English caption, e.g. "a red circle on a dark background, small, top left".

    Parts are dropped at random (the colour, the background, the size, the position), and the order of the
    trailing parts varies; the style is never mentioned. A named shape is called "object" with `generic_rate`, as
    real captions sometimes use a generic word for a thing they could name.
    """
    colour = "" if rng.random() < drop_rate else f"{scene.colour} "
    noun = shape_word(scene.shape)
    if generic_rate and noun != "object" and rng.random() < generic_rate:
        noun = "object"
    article = "an" if (colour or noun)[0] in "aeiou" else "a"
    text = f"{rng.choice(PREFIXES)}{article} {colour}{noun}"
    if rng.random() >= drop_rate:
        text += f" on a {scene.background} background"
    extras = []
    if rng.random() >= drop_rate * 2:
        extras.append(scene.size)
    if rng.random() >= drop_rate * 2:
        extras.append(scene.position)
    rng.shuffle(extras)
    return ", ".join([text, *extras])


def render(scene: Scene, seed: int = 0, size: int = IMAGE_SIZE) -> Image.Image:
    """Draw a scene as an RGB image; the same scene and seed give the same pixels."""
    rng = random.Random(seed)
    scale = 4  # drawn 4x larger, then reduced: smooth edges
    side = size * scale
    cx, cy = POSITIONS[scene.position]
    jitter = 0.04
    cx = (cx + rng.uniform(-jitter, jitter)) * side
    cy = (cy + rng.uniform(-jitter, jitter)) * side
    radius = SIZES[scene.size] * side / 2 * rng.uniform(0.92, 1.08)
    angle = rng.uniform(-0.25, 0.25)
    mask = Image.new("L", (side, side), 0)
    _draw_mask(ImageDraw.Draw(mask), scene.shape, cx, cy, radius, angle)
    if scene.style == "outline":
        # erosion: a pixel stays inside when its whole box neighbourhood is inside (box blur stays at 255)
        inner = mask.filter(ImageFilter.BoxBlur(max(1, round(radius * 0.22)))).point(lambda v: 255 if v > 250 else 0)
        mask = ImageChops.subtract(mask, inner)
    image = Image.new("RGB", (side, side), BACKGROUNDS[scene.background])
    image.paste(COLOURS[scene.colour], mask=mask)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _polygon(cx: float, cy: float, radius: float, n: int, angle: float, inner: float = 0.0) -> list[tuple]:
    points = []
    steps = n * 2 if inner else n
    for i in range(steps):
        r = radius if not inner or i % 2 == 0 else radius * inner
        a = angle - math.pi / 2 + 2 * math.pi * i / steps
        points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return points


def _cross(cx: float, cy: float, radius: float, angle: float) -> list[tuple]:
    t = 0.36  # half-width of the arms, as a fraction of the radius
    corners = [(t, 1), (t, t), (1, t), (1, -t), (t, -t), (t, -1), (-t, -1), (-t, -t), (-1, -t), (-1, t),
               (-t, t), (-t, 1)]
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + radius * (x * c - y * s), cy + radius * (x * s + y * c)) for x, y in corners]


def _draw_mask(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, radius: float, angle: float) -> None:
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=255)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, radius * 1.05, 4, angle + math.pi / 4), fill=255)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy + radius * 0.15, radius * 1.1, 3, angle), fill=255)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, radius * 1.1, 5, angle, inner=0.45), fill=255)
    elif shape == "cross":
        draw.polygon(_cross(cx, cy, radius, angle), fill=255)
    elif shape == "crescent":
        draw.ellipse(box, fill=255)
        dx, dy = radius * 0.55 * math.cos(angle), radius * 0.55 * math.sin(angle) - radius * 0.2
        draw.ellipse((box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy), fill=0)
    else:
        raise ValueError(f"unknown shape {shape!r}")
