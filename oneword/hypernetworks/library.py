"""The hypernetworks folder and the prompt tags that pick from it: `<hypernet:NAME:STRENGTH>` (A1111's syntax;
the strength defaults to 1; oneword/hypernetworks/tag.py declares the tag type). Files are found by stem,
case-insensitively, and read when a prompt first asks; the folder is walked as the embeddings folder is (linked
folders followed, each real folder once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from oneword.conditioning.tags import Tag, parse_tags
from oneword.errors import OnewordError
from oneword.folder_walk import files_by_stem
from oneword.hypernetworks.formats import SUFFIXES, load_hypernetwork
from oneword.hypernetworks.hypernetwork import Hypernetwork

TAG_TYPE = "hypernet"


def wanted(tag: Tag) -> tuple[str, float]:
    """The (name, strength) a `<hypernet:NAME:STRENGTH>` tag asks for; the strength defaults to 1."""
    strength = tag.number(tag.items[1]) if len(tag.items) > 1 and tag.items[1] else 1.0
    if not tag.name:
        raise OnewordError(f"prompt tag {tag.text}: no hypernetwork name")
    return tag.name, strength


def split_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its tags, and the (name, strength) each `<hypernet:...>` asked for, in order."""
    text, tags = parse_tags(prompt)
    return text, [wanted(tag) for tag in tags if tag.type == TAG_TYPE]


@dataclass
class HypernetworkLibrary:
    """The hypernetwork files under a folder (subfolders too), by stem; loaded on first use."""

    tag: ClassVar[str] = TAG_TYPE
    folder: Path
    paths: dict[str, Path] = field(default_factory=dict)
    """Lowercased stem -> file, the first in sorted path order winning."""
    loaded: dict[str, Hypernetwork] = field(default_factory=dict)
    skipped: dict[str, tuple[Path, str]] = field(default_factory=dict)
    """Lowercased stem -> (file, why it cannot be read): dangling links, link loops, FIFOs, devices."""

    @classmethod
    def scan(cls, folder: Path, *, within: Path | None = None) -> HypernetworkLibrary:
        """Every `.pt` and `.safetensors` file under `folder` (none if it does not exist); with `within` (a web
        UI's workspace), files whose links lead outside it are skipped, unread."""
        library = cls(Path(folder))
        library.paths, library.skipped = files_by_stem(library.folder, SUFFIXES, within)
        return library

    def get(self, name: str) -> Hypernetwork:
        """The hypernetwork called `name`; a OnewordError naming the folder when there is none."""
        key = name.lower()
        if key not in self.loaded:
            if key not in self.paths and key in self.skipped:
                path, problem = self.skipped[key]
                raise OnewordError(f"<hypernet:{name}>: {path}: {problem}")
            if key not in self.paths:
                known = ", ".join(sorted(p.stem for p in self.paths.values())) or "none"
                raise OnewordError(f"<hypernet:{name}>: no such hypernetwork in {self.folder} (it has: {known})")
            self.loaded[key] = load_hypernetwork(self.paths[key])
        return self.loaded[key]

    def names(self) -> list[str]:
        """The usable files' stems, in sorted order."""
        return sorted(p.stem for p in self.paths.values())
