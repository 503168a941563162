"""Files written whole or not at all: a temporary file in the same folder, then a rename over the target.

The temporary file is `.NAME.XXXXXXXX.tmp` beside NAME; one left behind by a killed process is removed by
`remove_temporaries`. The written file gets the permissions a plain `open(path, "w")` gives: those of the file
it replaces, else 0666 less the umask (a web UI running as another user of the group can read what a run wrote).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
"""`.NAME.` + 8 random characters + `.tmp` (this module's, and the `tempfile.mkstemp` names of earlier versions)."""
_BINARY = getattr(os, "O_BINARY", 0)


def _open_temporary(path: Path) -> tuple[int, Path]:
    """A new temporary file beside `path`, created as `open()` would create a file (0666 less the umask)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free name for a temporary file beside {path.name}")


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, overwrite: bool = True) -> None:
    """Write a file through a temporary file in the same folder, then rename it over `path` (never half-written).
    With `overwrite` False an existing `path` is never replaced: FileExistsError, even for a file that appears
    while this one is written (the temporary is linked to `path`, which fails where a file is)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        try:
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))  # an overwritten file keeps its mode, as with open()
        except FileNotFoundError:
            pass
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except FileExistsError:
        Path(tmp).unlink(missing_ok=True)
        raise FileExistsError(errno.EEXIST, "already exists (not replaced)", str(path)) from None
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        if error.filename is None:  # a failed write (a full disk) does not say which file: name the target
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_new(tmp: Path, path: Path) -> None:
    """Give the written temporary file the name `path` only where nothing has that name (FileExistsError)."""
    try:
        os.link(tmp, path)  # atomic: fails where a file, a folder or a link (even a dangling one) is
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename (a narrow race, as open(path, "x"))
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "already exists", str(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def remove_temporaries(folder: Path, targets: Iterable[str] | None = None) -> list[Path]:
    """Delete the temporary files a killed write left in `folder` (not below it): those of the file names
    `targets`, or of any file when `targets` is None. Returns what was removed."""
    wanted = None if targets is None else set(targets)
    removed = []
    if not Path(folder).is_dir():
        return removed
    for entry in Path(folder).iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and (wanted is None or match["target"] in wanted) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
