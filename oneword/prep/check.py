"""`oneword check DIR`: what is wrong with a dataset, before hours are spent training on it.

Errors (the folder cannot be trained on as it is: unreadable files, no pictures) make the command fail; warnings
(few pictures, near-duplicates, several faces, small or blurry pictures, captions) and notes (what `preprocess`
would do) do not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from oneword.errors import OnewordError
from oneword.prep.captions import existing_caption
from oneword.prep.crop import cover_size, needs_split, size_problem, split_boxes
from oneword.prep.images import BadImage, open_image, source_entries
from oneword.prep.size import too_small_advice

FEW, ENOUGH = 15, 30
"""Under FEW pictures is a warning; ENOUGH is what to aim for (the tutorial's advice)."""
DUPLICATE_BITS = 6
"""Difference hashes (64 bits) this close or closer count as near-duplicates."""
BLUR_THRESHOLD = 60.0
"""Variance of the Laplacian (grey levels, at most 512 px on the short side) under which a picture looks blurry."""


@dataclass
class Finding:
    level: str
    """`error`, `warning` or `note`."""
    message: str
    path: Path | None = None

    def line(self) -> str:
        where = f"{self.path.name}: " if self.path else ""
        return f"{self.level}: {where}{self.message}"


@dataclass
class CheckReport:
    folder: Path
    pictures: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def add(self, level: str, message: str, path: Path | None = None) -> None:
        self.findings.append(Finding(level, message, path))


@dataclass
class CheckConfig:
    folder: Path
    name: str | None = None
    """The embedding's name: captions should not contain it (the template adds it)."""
    width: int = 512
    height: int | None = None
    """The size `preprocess` would make (default: square)."""
    split_threshold: float = 0.5
    overlap: float = 0.2
    faces: bool = True
    """Count faces (a character set should show one person per picture)."""
    crop: str = "center"
    """The crop `preprocess` would use: a picture it would skip as too small is not usable."""


def check_dataset(config: CheckConfig, on_progress: Callable[[int, int], None] = lambda done, total: None,
                  ) -> CheckReport:
    """Read every picture of the folder and report what a user should know before training on it."""
    folder = Path(config.folder)
    if not folder.is_dir():
        raise OnewordError(f"DIR {folder}: no such folder")
    files, unusable = source_entries(folder)
    report = CheckReport(folder)
    for path, reason in unusable:
        report.add("error", f"cannot be used: {reason}", path)
    if not files:
        if not unusable:
            report.add("error", "no pictures in the folder")
        return report
    target = (config.width, config.height or config.width)
    hashes: list[tuple[int, Path]] = []
    sizes: Counter = Counter()
    too_small = 0
    for done, path in enumerate(files, 1):
        try:
            image = open_image(path)
            problem = size_problem(image.size, target, config.crop)  # preprocess's own rule
            if problem:
                too_small += config.crop != "none"  # a smaller size helps; crop none refuses only pictures under 8 px
                raise BadImage(problem)
        except BadImage as error:
            report.add("error", f"cannot be used: {error}", path)
            on_progress(done, len(files))
            continue
        report.pictures += 1
        sizes[image.size] += 1
        hashes.append((difference_hash(image), path))
        _check_picture(report, path, image, target, config)
        _check_caption(report, path, config.name)
        on_progress(done, len(files))
    if too_small:
        report.add("warning", f"{too_small} pictures are too small for {target[0]}x{target[1]}; {too_small_advice()}")
    if report.pictures and report.pictures < FEW:
        report.add("warning", f"only {report.pictures} usable pictures; under {FEW} rarely teaches a concept well, "
                              f"{ENOUGH} or more varied ones are better")
    for a, b in near_duplicates(hashes):
        report.add("warning", f"nearly the same picture as {b.name} (it counts twice in training)", a)
    if sizes:
        aspects: Counter = Counter()
        for (w, h), n in sizes.items():
            aspects[_aspect(w, h)] += n
        smallest = min(sizes, key=lambda s: s[0] * s[1])
        largest = max(sizes, key=lambda s: s[0] * s[1])
        report.add("note", f"{report.pictures} pictures from {smallest[0]}x{smallest[1]} to {largest[0]}x{largest[1]};"
                           f" aspect ratios: " + ", ".join(f"{a} ({n})" for a, n in aspects.most_common(5)))
    return report


def _aspect(w: int, h: int) -> str:
    ratio = w / h
    for name, value in (("1:1", 1), ("4:3", 4 / 3), ("3:4", 3 / 4), ("3:2", 1.5), ("2:3", 2 / 3), ("16:9", 16 / 9),
                        ("9:16", 9 / 16)):
        if abs(ratio - value) < 0.03:
            return name
    return f"{ratio:.2f}:1"


def _check_picture(report: CheckReport, path: Path, image: Image.Image, target: tuple[int, int],
                   config: CheckConfig) -> None:
    w, h = image.size
    scale = max(target[0] / w, target[1] / h)
    if scale > 1.5:
        report.add("warning", f"small: {w}x{h} would be enlarged {scale:.1f}x to {target[0]}x{target[1]}", path)
    gray = np.asarray(image.convert("L"))
    if blur_score(gray) < BLUR_THRESHOLD:
        report.add("warning", "looks blurry (little fine detail)", path)
    if config.faces:
        n = count_faces(gray)
        if n > 1:
            report.add("warning", f"{n} faces; a character's pictures should show that one person", path)
    if needs_split(image.size, target, config.split_threshold):
        tiles = len(split_boxes(cover_size(image.size, target), target, config.overlap))
        report.add("note", f"{w}x{h}: preprocess --split would cut it into {tiles} tiles; without it the centre or "
                           f"focal crop keeps {min(w / h, h / w) * 100:.0f}% of it", path)
    elif (w, h) != target:
        report.add("note", f"{w}x{h}: preprocess would scale it by {scale:.2f} and crop to {target[0]}x{target[1]}",
                   path)


def _check_caption(report: CheckReport, path: Path, name: str | None) -> None:
    caption = existing_caption(path)
    if caption is None:
        return
    if not caption:
        report.add("warning", f"{path.with_suffix('.txt').name} is empty ([filewords] will be empty)", path)
    elif name and name.lower() in caption.lower():
        report.add("warning", f"its caption contains the embedding's name {name!r}; the template adds the name, "
                              f"so captions should describe everything else", path)


def difference_hash(image: Image.Image) -> int:
    """A 64-bit difference hash: is each pixel of an 9x8 grey thumbnail brighter than its right neighbour."""
    small = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def near_duplicates(hashes: list[tuple[int, Path]]) -> list[tuple[Path, Path]]:
    """Pairs (later, earlier) whose hashes differ in at most DUPLICATE_BITS bits; each picture reported once."""
    pairs, reported = [], set()
    for i, (h, path) in enumerate(hashes):
        for other, earlier in hashes[:i]:
            if earlier not in reported and (h ^ other).bit_count() <= DUPLICATE_BITS:
                pairs.append((path, earlier))
                reported.add(path)
                break
    return pairs


def blur_score(gray: np.ndarray) -> float:
    """Variance of the Laplacian, the picture reduced to 512 px on its short side (never enlarged: enlarging blurs)."""
    import cv2

    scale = 512 / min(gray.shape)
    if scale < 1:
        gray = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
                          interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def count_faces(gray: np.ndarray) -> int:
    """Frontal faces OpenCV's cascade finds."""
    import cv2

    detector = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    side = min(gray.shape)
    return len(detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=7, minSize=(side // 10, side // 10)))
