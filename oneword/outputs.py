"""Where results go, checked before any work starts: output folders, and the file names made from a NAME."""

from __future__ import annotations

import os
from pathlib import Path

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
    or trailing `.` (a hidden file; Windows drops a trailing dot), or longer than MAX_NAME_BYTES."""
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
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return (f"{option} is {len(name)} characters long ({size} bytes); the files named after it allow at most "
                f"{MAX_NAME_BYTES} bytes")
    return None
