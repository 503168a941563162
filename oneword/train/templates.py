"""Prompt templates: lines with `[name]` and `[filewords]`, shipped by name or read from a user's file."""

from __future__ import annotations

import random
import re
from importlib import resources
from pathlib import Path

from oneword.errors import OnewordError

TEMPLATE_NAMES = ("subject", "subject_filewords", "style", "style_filewords", "hypernetwork", "none")
"""The templates oneword ships, under A1111's file names (our own wording, the same placeholders)."""

LEADING_INDEX = re.compile(r"^[-\d]+\s*")
"""A1111 removes a leading `00012-0-` index from file names used as captions (what preprocess writes)."""


def shipped_template(name: str) -> Path:
    """Path of a shipped template file, by name with or without `.txt`."""
    stem = name.removesuffix(".txt")
    return Path(str(resources.files("oneword") / "data" / "templates" / f"{stem}.txt"))


def read_template(spec: str) -> list[str]:
    """The lines of a template: a shipped name (`subject_filewords`) or a path to a text file."""
    stem = spec.removesuffix(".txt")
    if stem in TEMPLATE_NAMES:
        path = shipped_template(stem)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise OnewordError(
                f"--template {spec!r}: no such file, and not a shipped template ({', '.join(TEMPLATE_NAMES)})"
            )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise OnewordError(f"--template {path}: cannot be read as UTF-8 text ({error})") from error
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise OnewordError(f"--template {path}: the file has no lines")
    return lines


def caption_from_name(path: Path) -> str:
    """The caption A1111 derives from an image file name: the stem without its leading index."""
    return LEADING_INDEX.sub("", path.stem)


def fill_template(
    line: str, name: str, filewords: str, rng: random.Random, *, shuffle_tags: bool = False, tag_dropout: float = 0.0
) -> str:
    """One training prompt: `[filewords]` becomes the caption (tags dropped and shuffled as asked), `[name]` the name.

    As in A1111, tags are the caption split at commas; dropout drops each with probability `tag_dropout`.
    """
    tags = filewords.split(",")
    if tag_dropout:
        tags = [t for t in tags if rng.random() > tag_dropout]
    if shuffle_tags:
        rng.shuffle(tags)
    return line.replace("[filewords]", ",".join(tags)).replace("[name]", name)
