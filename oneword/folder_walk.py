"""The files under a folder as a scan of embeddings or hypernetworks sees them: symlinked folders followed, each
real folder once (two links back to their own folder cannot make a scan endless), and every file that cannot be
read (a dangling link, a link loop, a FIFO or a device) named with its reason before anything opens it."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

OUTSIDE = "leads outside the workspace"


def walk_files(folder: Path, within: Path | None = None) -> Iterator[Path]:
    """Every non-folder entry under `folder`, subfolders and linked folders too, each real folder visited once.

    With `within`, linked folders that lead outside it are not entered (their files could not be read anyway).
    Folders that cannot be listed are passed over, as `os.walk` does.
    """
    return (path for path, is_dir in _walk(folder, within) if not is_dir)


def files_by_stem(folder: Path, suffixes: tuple[str, ...], within: Path | None = None
                  ) -> tuple[dict[str, Path], dict[str, tuple[Path, str]]]:
    """The files under `folder` (recursively, sorted; none if it is no folder) whose suffix is one of `suffixes`, by
    lowercased stem, the first of a stem kept: those that can be read, and those that cannot, with why (dangling
    links, link loops, FIFOs, devices). With `within`, files whose links lead outside it are left out, unread."""
    paths: dict[str, Path] = {}
    skipped: dict[str, tuple[Path, str]] = {}
    if Path(folder).is_dir():
        for path in sorted(p for p in walk_files(Path(folder), within) if p.suffix.lower() in suffixes):
            problem = unreadable(path, within)
            if problem is None:
                paths.setdefault(path.stem.lower(), path)
            else:
                skipped.setdefault(path.stem.lower(), (path, problem))
    return paths, skipped


def links_out(folder: Path, root: Path) -> list[Path]:
    """The links under `folder`, to files or folders, that lead outside `root` (folders outside are not entered;
    a dangling or looping link leads nowhere and reads nothing, so it is not one of them)."""
    return [path for path, _ in _walk(folder, root) if path.is_symlink() and _leads_out(path, root)]


def _walk(folder: Path, within: Path | None) -> Iterator[tuple[Path, bool]]:
    """Every entry under `folder` with whether it is a folder; each real folder entered once, and with `within`
    only those inside it."""
    seen: set[tuple[int, int]] = set()
    stack = [Path(folder)]
    while stack:
        current = stack.pop()
        try:
            info = os.stat(current)
            entries = sorted(os.scandir(current), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        for entry in entries:
            path, is_dir = Path(entry.path), _is_dir(entry)
            yield path, is_dir
            if is_dir and (within is None or _inside(path, within)):
                stack.append(path)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop: a file entry, skipped later with its reason
        return False


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):
        return False


def _leads_out(path: Path, root: Path) -> bool:
    try:
        return not path.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):
        return False


def unreadable(path: Path, within: Path | None = None) -> str | None:
    """Why `path` cannot be read as a file (a dangling link, a link loop, not a regular file, outside `within`),
    or None when it is a regular file that may be opened. Never opens the file: a FIFO would block, a device
    would never end."""
    try:
        info = os.stat(path)
    except OSError as error:
        return _stat_problem(path, error)
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file ({_kind(info.st_mode)})"
    if within is not None and not _inside(path, within):
        return OUTSIDE
    return None


def _stat_problem(path: Path, error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "a link loop (the link leads back to itself)"
    if error.errno == errno.ENOENT and os.path.islink(path):
        return f"a dangling link (its target {os.readlink(path)} does not exist)"
    return f"unreadable ({error.strerror or error})"


_KINDS: list[tuple[Callable[[int], bool], str]] = [
    (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
]


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a file")
