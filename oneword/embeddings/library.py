"""The embeddings folder: every embedding file under it, loaded or skipped with the reason.

Rules (A1111's where it has one):
- every file under the folder and its subfolders (symlinked folders followed, each real folder once, so that a
  link back to its own folder cannot make the scan endless), in sorted path order;
- files with other suffixes than .pt, .bin, .safetensors, .png, .webp, .avif, .jxl are not embeddings and are
  ignored, as are `*.preview.*` images (thumbnails that other tools put beside embeddings);
- empty files, unreadable files (dangling links, link loops, FIFOs, devices: never opened), images with no
  embedding data and embeddings whose widths do not fit the model are skipped, with the reason;
- prompt words match case-insensitively (CLIP lowercases prompts), so two files whose names differ only in
  case are duplicates: the first in sorted path order wins, the others are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from oneword.embeddings.embedding import Embedding, EmbeddingMismatch
from oneword.embeddings.formats import (
    EMBEDDING_SUFFIXES,
    IMAGE_SUFFIXES,
    EmbeddingFileError,
    load_embedding_file,
)
from oneword.errors import OnewordError
from oneword.folder_walk import unreadable, walk_files

if TYPE_CHECKING:
    from oneword.models.base import BaseModel

NO_DATA = "no embedding data"
EMPTY = "empty file"


@dataclass
class ScanEntry:
    """One embedding file of a scan, in sorted path order."""

    path: Path
    embedding: Embedding | None
    """What was read from it (also for files skipped for their width or name), None when unreadable."""
    reason: str | None = None
    """Why it was skipped; None when it was loaded."""

    @property
    def status(self) -> str:
        """`loaded` or `skipped: REASON`."""
        return "loaded" if self.reason is None else f"skipped: {self.reason}"


@dataclass
class EmbeddingLibrary:
    """The embeddings of a folder that fit a model, and the files that were skipped."""

    loaded: dict[str, Embedding]
    """Prompt word (as stored) -> embedding; prompts match it case-insensitively (see `find`)."""
    skipped: list[tuple[Path, str]]
    """(file, reason) of every embedding file that was not loaded."""
    entries: list[ScanEntry] = field(default_factory=list)
    """Every embedding file in sorted path order, loaded or skipped."""

    def find(self, word: str) -> Embedding | None:
        """The embedding for a prompt word, matched case-insensitively, or None."""
        word = word.lower()
        return next((emb for name, emb in self.loaded.items() if name.lower() == word), None)


def embedding_files(folder: Path, within: Path | None = None) -> list[Path]:
    """The files under `folder` that may be embeddings (by suffix, previews left out), in sorted path order.

    With `within` (a web UI's workspace), linked folders that lead outside it are not entered.
    """
    found = []
    for path in walk_files(folder, within):
        if path.suffix.lower() not in EMBEDDING_SUFFIXES:
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and Path(path.stem).suffix.lower() == ".preview":
            continue
        found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def scan_embeddings(folder: Path, model: BaseModel | None, *, within: Path | None = None) -> EmbeddingLibrary:
    """Read every embedding under `folder`; with a model, keep only those whose widths fit it.

    A folder that does not exist gives an empty library (as in A1111); a path that is a file is an error. With
    `within` (a web UI's workspace), files whose links lead outside it are skipped, unread.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OnewordError(f"{folder}: not a folder (expected the embeddings folder)")
    entries: list[ScanEntry] = []
    owners: dict[str, Path] = {}
    for path in embedding_files(folder, within) if folder.is_dir() else []:
        entry = _read(path, folder, model, owners, within)
        if entry.reason is None:
            owners[entry.embedding.name.lower()] = path
        entries.append(entry)
    return EmbeddingLibrary(
        loaded={e.embedding.name: e.embedding for e in entries if e.reason is None},
        skipped=[(e.path, e.reason) for e in entries if e.reason is not None],
        entries=entries,
    )


def _read(path: Path, folder: Path, model: BaseModel | None, owners: dict[str, Path],
          within: Path | None) -> ScanEntry:
    problem = unreadable(path, within)
    if problem is not None:
        return ScanEntry(path, None, problem)
    if path.stat().st_size == 0:
        return ScanEntry(path, None, EMPTY)
    try:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            from oneword.embeddings.png import read_png_embedding

            embedding = read_png_embedding(path)
            if embedding is None:
                return ScanEntry(path, None, NO_DATA)
        else:
            embedding = load_embedding_file(path)
    except EmbeddingFileError as e:
        return ScanEntry(path, None, e.problem)
    except OSError as e:  # removed or made unreadable while the folder was scanned
        return ScanEntry(path, None, f"unreadable ({e.strerror or e})")
    owner = owners.get(embedding.name.lower())
    if owner is not None:
        return ScanEntry(path, embedding, f"duplicate name, already loaded from {owner.relative_to(folder).as_posix()}")
    if model is not None:
        try:
            embedding.vectors_for(model)
        except EmbeddingMismatch as e:
            return ScanEntry(path, embedding, str(e))
    return ScanEntry(path, embedding, None)
