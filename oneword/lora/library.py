"""The LoRA folder (A1111's `models/Lora`): every `.safetensors`, `.pt`, `.ckpt` and `.bin` file under it, subfolders
too, by file stem (case-insensitive; the first in sorted path order wins), read when a prompt first asks for it.

A file that cannot be used (unreadable, not a LoRA, NaN values, a pickle that would run code) is left out with one
line in `notes` and never stops a generation; a sibling's problem is only found when that sibling is asked for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from oneword.errors import OnewordError
from oneword.folder_walk import files_by_stem
from oneword.lora.network import Lora
from oneword.lora.read import SUFFIXES, read_layout
from oneword.lora.write import addnet_hash

TAG_TYPE = "lora"


def file_hash(path: Path, metadata: dict[str, str]) -> str:
    """The hash A1111 names a LoRA by (extensions-builtin/Lora/network.py): the header's `sshs_model_hash`, else
    for safetensors the Additional Networks hash (SHA-256 after the header), else the file's SHA-256."""
    if metadata.get("sshs_model_hash"):
        return metadata["sshs_model_hash"]
    data = Path(path).read_bytes()
    return addnet_hash(data) if Path(path).suffix.lower() == ".safetensors" else hashlib.sha256(data).hexdigest()


@dataclass
class Entry:
    """One file of the folder once read: its LoRA and layout, or why it is left out."""

    path: Path
    lora: Lora | None = None
    layout: str = ""
    problem: str = ""
    _hash: str | None = field(default=None, repr=False)

    @property
    def hash(self) -> str:
        """The hash A1111 names the LoRA by (`file_hash`), read on first use: a listing never reads the whole file
        for it; "" for a file left out."""
        if self._hash is None:
            try:
                self._hash = file_hash(self.path, self.lora.metadata) if self.lora is not None else ""
            except OSError:  # gone or unreadable since it was read: the infotext goes without its hash
                self._hash = ""
        return self._hash


@dataclass
class LoraLibrary:
    """The LoRA files under a folder by stem; each read once, on first use."""

    tag: ClassVar[str] = TAG_TYPE
    folder: Path
    paths: dict[str, Path] = field(default_factory=dict)
    """Lowercased stem -> file."""
    skipped: dict[str, tuple[Path, str]] = field(default_factory=dict)
    """Lowercased stem -> (file, why it cannot be read): dangling links, link loops, FIFOs, devices."""
    read: dict[str, Entry] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What was left out, each line once, in the order found."""

    @classmethod
    def scan(cls, folder: Path, *, within: Path | None = None) -> LoraLibrary:
        """Every LoRA file under `folder` (none if it does not exist); with `within` (a web UI's workspace), files
        whose links lead outside it are left out, unread."""
        library = cls(Path(folder))
        library.paths, library.skipped = files_by_stem(library.folder, SUFFIXES, within)
        return library

    def note(self, line: str) -> None:
        """Add `line` to the notes unless it is there already."""
        if line not in self.notes:
            self.notes.append(line)

    def entry(self, key: str) -> Entry:
        """The file of lowercased stem `key` read (once): its LoRA, or the reason it is left out."""
        if key not in self.read:
            path = self.paths[key]
            try:
                lora, layout = read_layout(path)
                self.read[key] = Entry(path, lora, layout)
            except OnewordError as error:
                self.read[key] = Entry(path, problem=str(error))
            except OSError as error:
                self.read[key] = Entry(path, problem=f"{path}: cannot be read ({error.strerror or error})")
        return self.read[key]

    def get(self, name: str) -> Entry | None:
        """The file called `name`, read; None, with a note, when there is none or it cannot be used."""
        key = name.lower()
        if key not in self.paths:
            if key in self.skipped:
                path, problem = self.skipped[key]
                self.note(f"<lora:{name}>: {path}: {problem}; left out")
            else:
                known = ", ".join(self.names()) or "none"
                self.note(f"<lora:{name}>: no such LoRA in {self.folder} (it has: {known}); left out")
            return None
        found = self.entry(key)
        if found.lora is None:
            self.note(f"<lora:{name}>: {found.problem}; left out")
            return None
        return found

    def entries(self) -> list[Entry]:
        """Every file of the folder read, in path order, and the unreadable ones with their reasons."""
        read = [self.entry(key) for key in self.paths]
        unread = [Entry(path, problem=f"{path}: {problem}") for path, problem in self.skipped.values()]
        return sorted(read + unread, key=lambda e: str(e.path))

    def names(self) -> list[str]:
        """The files' stems, in sorted order."""
        return sorted(p.stem for p in self.paths.values())
