"""Guards for tests of hostile input that check the work done rather than the time taken: a file that must never be
opened (a FIFO blocks, a device never ends) and folders that must not be listed again and again (a link loop)."""

from __future__ import annotations

import builtins
import io
import os
from collections import Counter
from pathlib import Path


class Refused(AssertionError):
    """The guarded code did what the test forbids (raised instead of letting it block or loop)."""


def never_opened(monkeypatch, *names: str) -> None:
    """Fail at once, instead of blocking, when a file or link called one of `names` is opened."""
    for module, name in ((builtins, "open"), (io, "open"), (os, "open")):
        real = getattr(module, name)

        def guarded(file, *args, _real=real, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and Path(os.fsdecode(file)).name in names:
                raise Refused(f"{os.fsdecode(file)} was opened")
            return _real(file, *args, **kwargs)

        monkeypatch.setattr(module, name, guarded)


def folders_listed(monkeypatch, root: Path, most: int) -> Counter:
    """Count the listings of each folder under `root` (by its real path); fail at once when one is listed more than
    `most` times (a walk that follows a link loop lists the same folders without end)."""
    listed: Counter = Counter()
    real, top = os.scandir, os.path.realpath(root)

    def counted(path=".", *args, **kwargs):
        folder = os.path.realpath(path)
        if folder == top or folder.startswith(top + os.sep):
            listed[folder] += 1
            if listed[folder] > most:
                raise Refused(f"{folder} listed {listed[folder]} times")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", counted)
    return listed
