"""Where results go, checked before any work starts: output folders, and the file names made from a NAME."""

from __future__ import annotations

import os
from pathlib import Path

from oneword.errors import OnewordError

MAX_NAME_BYTES = 200
"""Longest NAME in UTF-8 bytes: file systems allow 255 per file name, and oneword adds up to about 40 to it
(`.NAME-1000000.pt.optim.XXXXXXXX.tmp` while a checkpoint is written)."""


def folder_problem(option: str, folder: Path) -> str | None:
    """Why `folder` cannot receive files, naming `option` (None when it can): a file in the way, or no write access.

    A folder that does not exist yet is judged by its nearest existing parent, where it would be created.
    """
    folder = Path(folder)
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "a broken link" if existing.is_symlink() and not existing.exists() else "a file"
        if existing == folder:
            return f"{option} {folder}: is {what}, not a folder"
        return f"{option} {folder}: cannot be created, {existing} is {what}"
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == folder else f" (its parent {existing})"
        return f"{option} {folder}: not writable{where}"
    return None


NAME_PUNCTUATION = "_-."
"""The characters a NAME may hold besides letters and digits: a NAME is a file stem and the word prompts call it
by (A1111 finds an embedding by its file stem, `<lora:NAME:1>` and `<hypernet:NAME:1>` by theirs), so `/`, `.`,
spaces and the like are refused rather than removed."""


def name_problem(option: str, name: str) -> str | None:
    """Why `name` cannot be a NAME (None when it can): empty, a character other than letters (any script), digits,
    `_`, `-` and `.` (A1111 users write versions as `style-v1.5`), a leading `-` (it reads as an option), a leading
    or trailing `.` (a hidden file; Windows drops a trailing dot), a Windows device's name (DEVICE_NAMES), or longer
    than MAX_NAME_BYTES."""
    if not name:
        return f"{option} is empty"
    bad = "".join(dict.fromkeys(ch for ch in name if not (ch.isalnum() or ch in NAME_PUNCTUATION)))
    if bad:
        shown = ", ".join("space" if ch == " " else repr(ch) for ch in bad)
        return f"{option} {name!r}: has {shown} (a name holds only letters, digits, _, - and .: it is a file's name)"
    if name.startswith("-"):
        return f"{option} {name!r}: starts with -, which reads as an option; start it with a letter or digit"
    if name.startswith(".") or name.endswith("."):
        return (f"{option} {name!r}: starts or ends with '.', which hides the file or is dropped; begin and end it "
                "with a letter or digit")
    if _device_name(name):
        return f"{option} {name!r}: is a device's name on Windows, where its files would not be files; choose another"
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return (f"{option} is {len(name)} characters long ({size} bytes); the files named after it allow at most "
                f"{MAX_NAME_BYTES} bytes")
    return None


MAX_FILE_NAME_BYTES = 255
"""Longest file name (one path part) in UTF-8 bytes that Linux, macOS and Windows file systems all take."""
TEMPORARY_BYTES = len(".") + len(".XXXXXXXX.tmp")
"""What `atomic_write`'s temporary file `.NAME.XXXXXXXX.tmp` adds to NAME: a name must leave room for it."""
DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))})
"""Names Windows gives to devices whatever their extension (`nul.png` is the null device there)."""


def file_name_problem(name: object) -> str | None:
    """Why `name`, found in a file or sent by a browser, cannot be one file's name inside a folder (None when it
    can): not text, empty, `.` or `..`, a path (a separator, a drive, an absolute path), a control character, a
    hidden file (oneword's temporaries start with `.`), a Windows device name, or too long to be written (over
    MAX_FILE_NAME_BYTES once its temporary file's TEMPORARY_BYTES are added)."""
    if not isinstance(name, str) or not name:
        return "is empty" if name in ("", None) else f"is not text ({type(name).__name__})"
    if name in (".", ".."):
        return f"{name!r} is not a file's name"
    if any(ch in name for ch in "/\\:"):
        return f"{name!r} is a path, not a file's name"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return f"{name!r} holds a control character"
    if name.startswith("."):
        return f"{name!r} starts with '.' (a hidden file)"
    if _device_name(name):
        return f"{name!r} is a device's name on Windows"
    size, most = len(name.encode("utf-8", "surrogateescape")), MAX_FILE_NAME_BYTES - TEMPORARY_BYTES
    if size > most:
        return (f"{name[:40]!r}... is {size} bytes long (a file's name holds at most {most}: {MAX_FILE_NAME_BYTES} "
                f"less the {TEMPORARY_BYTES} its temporary file adds)")
    return None


def _device_name(name: str) -> bool:
    """Whether Windows reads `name` as a device (`nul.png`, `COM1.v2.pt`: the part before the first dot)."""
    return name.split(".")[0].strip().upper() in DEVICE_NAMES


def path_inside(folder: Path, name: str, *, what: str, overwrite: bool = False) -> Path:
    """The path of the file `name` (a name found in a file or sent by a browser) directly inside `folder`: the one
    function every such path goes through. OnewordError naming `what` when `name` is not a plain file name, when
    the path is a link or would lead outside `folder`, or when a file is there and `overwrite` is False (then write
    with `atomic_write(..., overwrite=False)`, which also refuses a file that appears meanwhile)."""
    problem = file_name_problem(name)
    if problem:
        raise OnewordError(f"{what}: the name {problem}")
    root = Path(folder).resolve()
    path = root / name
    if path.is_symlink():
        raise OnewordError(f"{what}: {path} is a link; nothing is written through it")
    if path.resolve().parent != root:  # a case-folding or normalising file system, or a link raced in
        raise OnewordError(f"{what}: {name!r} leads outside {root}")
    if os.path.lexists(path):
        if path.is_dir():
            raise OnewordError(f"{what}: {path} is a folder")
        if not overwrite:
            raise OnewordError(f"{what}: {path} already exists (not replaced)")
    return path


def new_file_problem(folder: Path, name: str, *, overwrite: bool, what: str = "NAME") -> str | None:
    """Why a command cannot write the file `name` of its NAME into `folder` (None when it can): `path_inside`'s
    refusals (a link, a folder), or a file already there without `overwrite`, said with the option that replaces
    it. Write it then with `atomic_write(..., overwrite=overwrite)`."""
    try:
        path = path_inside(folder, name, what=what, overwrite=True)
    except OnewordError as error:
        return str(error)
    if os.path.lexists(path) and not overwrite:
        return exists_problem(Path(folder) / name)
    return None


def exists_problem(path: Path) -> str:
    """What a command says of a file it would replace without --overwrite."""
    return f"{path} already exists (use --overwrite to replace it)"
