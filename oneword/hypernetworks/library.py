"""The hypernetworks folder and the prompt tags that pick from it: `<hypernet:NAME:STRENGTH>` (A1111's syntax;
the strength defaults to 1). Files are found by stem, case-insensitively, and read when a prompt first asks; the
folder is walked as the embeddings folder is (linked folders followed, each real folder once)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from oneword.errors import OnewordError
from oneword.folder_walk import unreadable, walk_files
from oneword.hypernetworks.apply import Active
from oneword.hypernetworks.formats import SUFFIXES, load_hypernetwork
from oneword.hypernetworks.hypernetwork import Hypernetwork

TAG = re.compile(r"<hypernet:([^:>]*)(?::([^>]*))?>")


def split_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its `<hypernet:...>` tags, and the (name, strength) each asked for, in order."""
    wanted = []
    for match in TAG.finditer(prompt):
        name, strength = match.group(1).strip(), (match.group(2) or "1").strip()
        try:
            value = float(strength)
        except ValueError:
            raise OnewordError(f"prompt tag {match.group(0)}: the strength {strength!r} is not a number") from None
        if not name:
            raise OnewordError(f"prompt tag {match.group(0)}: no hypernetwork name")
        wanted.append((name, value))
    return TAG.sub("", prompt), wanted


@dataclass
class HypernetworkLibrary:
    """The hypernetwork files under a folder (subfolders too), by stem; loaded on first use."""

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
        if library.folder.is_dir():
            for path in sorted(p for p in walk_files(library.folder, within) if p.suffix.lower() in SUFFIXES):
                problem = unreadable(path, within)
                if problem is None:
                    library.paths.setdefault(path.stem.lower(), path)
                else:
                    library.skipped.setdefault(path.stem.lower(), (path, problem))
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

    def active_for(self, prompt: str) -> tuple[str, Active]:
        """The prompt without its tags and the hypernetworks it asks for, with their strengths."""
        text, wanted = split_tags(prompt)
        return text, [(self.get(name), strength) for name, strength in wanted]


def prompt_hypernetworks(prompt: str, library: HypernetworkLibrary | None) -> tuple[str, Active]:
    """`library.active_for(prompt)`; without a library a prompt with tags is an error."""
    if library is not None:
        return library.active_for(prompt)
    text, wanted = split_tags(prompt)
    if wanted:
        raise OnewordError(f"the prompt asks for hypernetwork {wanted[0][0]!r} but no hypernetworks folder is given")
    return text, []
