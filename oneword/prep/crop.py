"""Where to cut a picture: cover-and-crop at the centre or at a focal point, letterbox fit, and tiles of long pictures.

Everything here works on plain sizes and boxes, so it is cheap to test; `focal_point` is the only part that looks
at pixels (OpenCV's face detector, corner features, and entropy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CROP_MODES = ("center", "focal", "fit", "none")
MAX_UPSCALE = 4.0
"""A picture that would have to be enlarged more than this (per side) is too small to use."""

Box = tuple[int, int, int, int]
"""left, top, right, bottom in pixels of the resized picture."""


@dataclass(frozen=True)
class FocalWeights:
    """How much each kind of evidence pulls the crop (A1111's defaults)."""

    face: float = 0.9
    """Focal crop: weight of faces."""
    entropy: float = 0.15
    """Focal crop: weight of the most detailed window."""
    edges: float = 0.5
    """Focal crop: weight of corner features."""


def cover_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """The size of `size` scaled (keeping its aspect) so that it just covers `target`."""
    scale = max(target[0] / size[0], target[1] / size[1])
    return max(target[0], round(size[0] * scale)), max(target[1], round(size[1] * scale))


def size_problem(size: tuple[int, int], target: tuple[int, int], crop: str = "center") -> str | None:
    """Why a picture of `size` cannot become a `target` training picture with `crop` (too small), or None.

    The one rule of `preprocess` and `check`: enlarged more than MAX_UPSCALE per side, or (crop `none`) under 8 px.
    """
    w, h = size
    if crop == "none":
        return f"too small: {w}x{h} px (under 8 px)" if w < 8 or h < 8 else None
    scale = max(target[0] / w, target[1] / h)
    if scale > MAX_UPSCALE:
        return (f"too small: {w}x{h} px would be enlarged {scale:.0f}x to {target[0]}x{target[1]} "
                f"(at most {MAX_UPSCALE:.0f}x)")
    return None


def fit_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """The size of `size` scaled (keeping its aspect) so that it just fits inside `target`."""
    scale = min(target[0] / size[0], target[1] / size[1])
    return max(1, min(target[0], round(size[0] * scale))), max(1, min(target[1], round(size[1] * scale)))


def window_at(center: tuple[float, float], size: tuple[int, int], target: tuple[int, int]) -> Box:
    """A `target`-sized box centred on `center` as nearly as the picture (`size`) allows."""
    left = round(min(max(center[0] - target[0] / 2, 0), size[0] - target[0]))
    top = round(min(max(center[1] - target[1] / 2, 0), size[1] - target[1]))
    return left, top, left + target[0], top + target[1]


def needs_split(size: tuple[int, int], target: tuple[int, int], threshold: float) -> bool:
    """Whether a picture is so much longer than the target's aspect that it should become tiles (A1111's rule:
    its aspect, relative to the target's, exceeds 1 + threshold)."""
    ratio = (size[0] / size[1]) / (target[0] / target[1])
    return max(ratio, 1 / ratio) > 1 + threshold


def split_boxes(size: tuple[int, int], target: tuple[int, int], overlap: float) -> list[Box]:
    """Tiles of `target` size along the long side of a picture already scaled to cover `target`, overlapping by at
    least `overlap` of a tile, spread evenly from one end to the other."""
    wide = size[0] / target[0] >= size[1] / target[1]
    length, tile = (size[0], target[0]) if wide else (size[1], target[1])
    count = max(1, math.ceil((length - tile * overlap) / (tile * (1 - overlap))))
    step = (length - tile) / (count - 1) if count > 1 else 0
    offsets = [round(i * step) for i in range(count)]
    if wide:
        return [(o, 0, o + target[0], target[1]) for o in offsets]
    return [(0, o, target[0], o + target[1]) for o in offsets]


def letterbox(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """The whole picture scaled to fit `target`, centred, the rest transparent (RGBA): with `--alpha-weight` the
    trainer ignores the padding."""
    inner = image.convert("RGBA").resize(fit_size(image.size, target), Image.Resampling.LANCZOS)
    mean = tuple(int(v) for v in np.asarray(inner.convert("RGB")).reshape(-1, 3).mean(axis=0))
    out = Image.new("RGBA", target, (*mean, 0))
    out.paste(inner, ((target[0] - inner.width) // 2, (target[1] - inner.height) // 2))
    return out


@dataclass
class Focus:
    """The evidence the focal crop used, for the debug image."""

    point: tuple[float, float]
    faces: list[tuple[int, int, int, int]]
    """x, y, w, h of each face found."""
    corners: list[tuple[float, float]]
    entropy: tuple[float, float] | None


def focal_point(image: Image.Image, target: tuple[int, int], weights: FocalWeights = FocalWeights()) -> Focus:
    """The point the crop window should centre on: the weighted mean of the faces' centre, the corner features'
    centre and the centre of the most detailed window. Kinds of evidence that find nothing do not count."""
    import cv2

    gray = np.asarray(image.convert("L"))
    faces = _faces(cv2, gray)
    corners = _corners(cv2, gray)
    entropy = _entropy_center(gray, target)
    pulls = []
    if faces and weights.face:
        pulls.append((weights.face, np.mean([(x + w / 2, y + h / 2) for x, y, w, h in faces], axis=0)))
    if corners and weights.edges:
        pulls.append((weights.edges, np.mean(corners, axis=0)))
    if entropy is not None and weights.entropy:
        pulls.append((weights.entropy, np.asarray(entropy)))
    if pulls:
        total = sum(w for w, _ in pulls)
        point = tuple(float(v) for v in sum(w * np.asarray(p, dtype=float) for w, p in pulls) / total)
    else:
        point = (image.width / 2, image.height / 2)
    return Focus(point=point, faces=faces, corners=corners, entropy=entropy)


def _faces(cv2, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    side = min(gray.shape)
    for name in ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml",
                 "haarcascade_profileface.xml"):
        detector = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        found = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=7, minSize=(side // 10, side // 10))
        if len(found):
            return [tuple(int(v) for v in face) for face in found]
    return []


def _corners(cv2, gray: np.ndarray) -> list[tuple[float, float]]:
    found = cv2.goodFeaturesToTrack(gray, maxCorners=100, qualityLevel=0.04, minDistance=min(gray.shape) * 0.06)
    return [] if found is None else [(float(x), float(y)) for x, y in found.reshape(-1, 2)]


def _entropy_center(gray: np.ndarray, target: tuple[int, int]) -> tuple[float, float] | None:
    """Centre of the target-sized window with the most grey-level entropy, slid in 16 steps along the long side."""
    h, w = gray.shape
    if (w, h) == target:
        return None
    best, best_score = None, -1.0
    span_x, span_y = w - target[0], h - target[1]
    for i in range(17):
        left, top = round(span_x * i / 16), round(span_y * i / 16)
        window = gray[top : top + target[1], left : left + target[0]]
        counts = np.bincount(window.ravel(), minlength=256).astype(float)
        p = counts[counts > 0] / counts.sum()
        score = float(-(p * np.log2(p)).sum())
        if score > best_score:
            best, best_score = (left + target[0] / 2, top + target[1] / 2), score
    return best


def debug_image(image: Image.Image, focus: Focus, box: Box) -> Image.Image:
    """The picture with the evidence drawn on it: faces (red), corners (blue), entropy (yellow), the chosen point
    (white) and the crop (green)."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    for x, y, w, h in focus.faces:
        draw.rectangle((x, y, x + w, y + h), outline=(255, 0, 0), width=3)
    for x, y in focus.corners:
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), outline=(0, 80, 255), width=2)
    if focus.entropy:
        x, y = focus.entropy
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), outline=(255, 220, 0), width=3)
    x, y = focus.point
    draw.ellipse((x - 8, y - 8, x + 8, y + 8), fill=(255, 255, 255))
    draw.rectangle(box, outline=(0, 255, 0), width=3)
    return out
