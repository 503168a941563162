"""`oneword preprocess SRC DST`: every picture of SRC cropped (or split, or fitted), optionally mirrored, and
captioned, into DST as `{index:05}-{sub}-{stem}.png` with a `.txt` beside each; SRC is only ever read.

A library function with progress events, so that the command line, the trainer and a web UI share it. Pictures
are prepared in parallel, one process per core; each output file is written atomically.
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from PIL import Image, ImageOps

from oneword.errors import OnewordError, gather
from oneword.files import atomic_write, atomic_write_text
from oneword.outputs import MAX_FILE_NAME_BYTES, TEMPORARY_BYTES
from oneword.prep.captions import CAPTION_ACTIONS, Tagger, TaggerSettings, combine, existing_caption, name_caption
from oneword.prep.crop import (
    CROP_MODES,
    FocalWeights,
    cover_size,
    debug_image,
    focal_point,
    letterbox,
    needs_split,
    size_problem,
    split_boxes,
    window_at,
)
from oneword.prep.images import BadImage, open_image, source_entries
from oneword.prep.size import too_small_advice

DEBUG_FOLDER = "focal-debug"


@dataclass
class PreprocessConfig:
    """A1111's Preprocess images tab, with its names and defaults."""

    src: Path
    """Folder of source pictures (only read, never written)."""
    dst: Path
    """Folder for the prepared pictures and captions (not inside SRC)."""
    width: int = 512
    """Output width, a multiple of 8."""
    height: int | None = None
    """None: the same as the width (square)."""
    crop: str = "center"
    """center, focal (faces, detail and corners pull the window), fit (letterbox, padding transparent) or none
    (keep the size, cut to multiples of 8)."""
    flip: bool = False
    """Also write a mirrored copy of each picture."""
    split: bool = False
    """Cut pictures much longer than the target's aspect into overlapping tiles."""
    split_threshold: float = 0.5
    """Split when the aspect exceeds the target's by this much."""
    overlap: float = 0.2
    """Least overlap of neighbouring tiles, as a share of a tile."""
    caption_action: str = "copy"
    """What to do with a source's existing `.txt` (A1111's names): copy it as the caption, prepend or append it to the
    new caption, or ignore it (the new caption replaces it). Pictures without one get the new caption."""
    tagger: TaggerSettings | None = None
    """New captions from this tagger; without one, from the file name."""
    focal: FocalWeights = field(default_factory=FocalWeights)
    """How much faces, detail and corners pull a focal crop."""
    focal_debug: bool = False
    """Write each focal crop's evidence to DST/focal-debug/ (not read by the trainer)."""
    overwrite: bool = False
    """Allow a DST that already has files (same-named outputs are replaced, others kept)."""
    workers: int | None = None
    """Processes; None: one per core."""
    max_pixels: int | None = None
    """Larger pictures are skipped (decompression bombs); None: PIL's limit (about 89 million pixels)."""

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height or self.width

    def problems(self) -> list[str]:
        """What is wrong with the settings (without touching DST)."""
        problems = []
        src, dst = Path(self.src), Path(self.dst)
        if not src.is_dir():
            problems.append(f"SRC {src}: no such folder")
        elif _link_loop(dst):
            problems.append(f"DST {dst} is a link loop (a link that leads back to itself)")
        elif dst.resolve() == src.resolve() or dst.resolve().is_relative_to(src.resolve()):
            problems.append(f"DST {dst} is SRC or inside it; the source pictures are never written to")
        for name, value in (("--width", self.width), ("--height", self.height)):
            if value is not None and (value <= 0 or value % 8):
                problems.append(f"{name} must be a positive multiple of 8, but is {value}")
        if self.crop not in CROP_MODES:
            problems.append(f"--crop must be one of {', '.join(CROP_MODES)}, but is {self.crop!r}")
        if self.caption_action not in CAPTION_ACTIONS:
            problems.append(f"--caption-action must be one of {', '.join(CAPTION_ACTIONS)}, "
                            f"but is {self.caption_action!r}")
        if self.split_threshold <= 0:
            problems.append(f"--split-threshold must be above 0, but is {self.split_threshold}")
        if not 0 <= self.overlap < 1:
            problems.append(f"--overlap must be at least 0 and under 1, but is {self.overlap}")
        if self.max_pixels is not None and self.max_pixels < 1:
            problems.append(f"--max-pixels must be at least 1, but is {self.max_pixels}")
        if self.workers is not None and self.workers < 1:
            problems.append(f"--workers must be at least 1, but is {self.workers}")
        if not problems and dst.exists():
            if not dst.is_dir():
                problems.append(f"DST {dst} is a file")
            elif any(dst.iterdir()) and not self.overwrite:
                problems.append(f"DST {dst} is not empty; choose another folder or pass --overwrite")
        return problems


def _link_loop(path: Path) -> bool:
    try:
        path.resolve()
    except RuntimeError:  # Python before 3.13 raises it for a link loop
        return True
    except OSError as error:  # Python 3.13 and later
        return error.errno == errno.ELOOP
    return False


@dataclass
class Prepared:
    """What became of one source picture."""

    source: Path
    written: list[Path]
    """The pictures written (captions beside them)."""
    skipped: str | None = None
    """Why the source was skipped (None when it was used)."""


@dataclass
class PreprocessResult:
    processed: int
    skipped: list[tuple[Path, str]]
    written: list[Path]


def preprocess(config: PreprocessConfig, on_progress: Callable[[int, int, Prepared], None] = lambda *a: None,
               ) -> PreprocessResult:
    """Prepare every picture of `config.src` into `config.dst`; `on_progress(done, total, prepared)` after each.

    Entries that cannot be read (a dangling link, a link loop, a folder, a FIFO, a device) are skipped unopened,
    with the reason; when every picture is skipped, a OnewordError says so (and a DST made for them is removed).
    """
    gather(config.problems())
    sources, unusable = source_entries(Path(config.src))
    if not sources and not unusable:
        raise OnewordError(f"SRC {config.src}: no pictures in it")
    if config.tagger:
        Tagger(config.tagger)  # a missing or broken tagger is reported before anything is written
    dst = Path(config.dst)
    made = not dst.exists()
    dst.mkdir(parents=True, exist_ok=True)
    total = len(sources) + len(unusable)
    results = [Prepared(path, [], reason) for path, reason in unusable]
    for done, prepared in enumerate(results, 1):
        on_progress(done, total, prepared)
    jobs = [(i, path, config) for i, path in enumerate(sources)]
    for prepared in _prepared(jobs, config.workers):
        results.append(prepared)
        on_progress(len(results), total, prepared)
    result = PreprocessResult(
        processed=sum(r.skipped is None for r in results),
        skipped=[(r.source, r.skipped) for r in results if r.skipped is not None],
        written=[p for r in results for p in r.written],
    )
    if not result.processed:
        if made and not any(dst.iterdir()):
            dst.rmdir()
        path, reason = result.skipped[0]
        small = config.crop != "none" and reason.startswith("too small")  # crop none: only under 8 px is too small
        advice = f"; {too_small_advice()}" if small else ""
        raise OnewordError(f"SRC {config.src}: none of its {total} pictures can be used, every one was skipped "
                           f"(the first, {path.name}: {reason}){advice}")
    return result


def _prepared(jobs: list[tuple[int, Path, PreprocessConfig]], workers: int | None) -> Iterator[Prepared]:
    """What became of each job's picture, in order: in this process, or one process per worker."""
    if not jobs:
        return
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers == 1:
        yield from map(_prepare_job, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        yield from pool.map(_prepare_job, jobs, chunksize=1)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


_taggers: dict[Path, Tagger] = {}


def _prepare_job(job: tuple[int, Path, PreprocessConfig]) -> Prepared:
    index, path, config = job
    try:
        return prepare_one(index, path, config)
    except BadImage as error:
        return Prepared(path, [], str(error))


def prepare_one(index: int, path: Path, config: PreprocessConfig) -> Prepared:
    """Prepare one source picture (raises BadImage when it cannot be used)."""
    image = open_image(path, config.max_pixels)
    pieces = cut(image, config, debug=_debug_writer(index, path, config))
    if config.flip:
        pieces = [p for piece in pieces for p in (piece, ImageOps.mirror(piece))]
    existing = existing_caption(path)
    tagger = None
    if config.tagger and not (config.caption_action == "copy" and existing):
        if config.tagger.folder not in _taggers:
            _taggers[config.tagger.folder] = Tagger(config.tagger)
        tagger = _taggers[config.tagger.folder]
    written = []
    captions: dict[int, str] = {}
    for sub, piece in enumerate(pieces):
        original = sub // 2 if config.flip else sub  # a mirrored copy shares its original's caption
        if original not in captions:
            new = tagger.caption(piece) if tagger else name_caption(path)
            captions[original] = combine(config.caption_action, existing, new)
        out = Path(config.dst) / fitted_name(f"{index:05}-{sub}-", path.stem, ".png")
        _write_png(out, piece)
        atomic_write_text(out.with_suffix(".txt"), captions[original] + "\n")
        written.append(out)
    return Prepared(path, written)


def cut(image: Image.Image, config: PreprocessConfig, debug: Callable | None = None) -> list[Image.Image]:
    """The pictures one source becomes, before mirroring."""
    target = config.size
    problem = size_problem(image.size, target, config.crop)
    if problem:
        raise BadImage(problem)
    if config.crop == "none":
        w, h = image.width // 8 * 8, image.height // 8 * 8
        left, top = (image.width - w) // 2, (image.height - h) // 2
        return [image.crop((left, top, left + w, top + h))]
    if config.crop == "fit":
        return [letterbox(image, target)]
    if config.split and needs_split(image.size, target, config.split_threshold):
        scaled = image.resize(cover_size(image.size, target), Image.Resampling.LANCZOS)
        return [scaled.crop(box) for box in split_boxes(scaled.size, target, config.overlap)]
    scaled = image.resize(cover_size(image.size, target), Image.Resampling.LANCZOS)
    if config.crop == "focal":
        focus = focal_point(scaled, target, config.focal)
        box = window_at(focus.point, scaled.size, target)
        if debug:
            debug(debug_image(scaled, focus, box))
    else:
        box = window_at((scaled.width / 2, scaled.height / 2), scaled.size, target)
    return [scaled.crop(box)]


def _debug_writer(index: int, path: Path, config: PreprocessConfig) -> Callable | None:
    if not config.focal_debug:
        return None
    return lambda image: _write_png(Path(config.dst) / DEBUG_FOLDER / fitted_name(f"{index:05}-", path.stem, ".png"),
                                    image)


def fitted_name(prefix: str, stem: str, suffix: str) -> str:
    """`PREFIX STEM SUFFIX`, A1111's name for a prepared picture (`00001-0-cat.png`), with the source's STEM cut
    short where the whole would not fit a file's name (the source's own name may be as long as a name can be; the
    prefix keeps the names apart)."""
    room = MAX_FILE_NAME_BYTES - TEMPORARY_BYTES - len(f"{prefix}{suffix}".encode())
    while len(stem.encode("utf-8", "surrogateescape")) > room:
        stem = stem[:-1]
    return f"{prefix}{stem}{suffix}"


def _write_png(path: Path, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    atomic_write(path, lambda f: f.write(data))

