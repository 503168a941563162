"""One training per name and folder at a time: a lock file holding the process id of the run that writes there.

A second run of the same name into the same folders is refused with the first one's process id; a lock left by a
process that no longer runs (killed, machine restarted) is taken over, with a note saying so.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil

from oneword.errors import OnewordError

_HELD: set[Path] = set()
"""The lock files this process holds (a lock file naming this process but not in here was left by an earlier
process that had the same id)."""


class RunLock:
    """The lock files of one run (taken in the order given, released in reverse)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self.held: list[Path] = []
        self.notes: list[str] = []

    def __enter__(self) -> RunLock:
        try:
            for path in self.paths:
                note = _take(path)
                self.held.append(path)
                _HELD.add(path.resolve())
                if note:
                    self.notes.append(note)
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Remove the lock files this run holds."""
        while self.held:
            path = self.held.pop()
            _HELD.discard(path.resolve())
            path.unlink(missing_ok=True)


def _owner(path: Path) -> tuple[int | None, str]:
    """The process id and host written in a lock file (None when unreadable or torn)."""
    try:
        words = path.read_text(encoding="utf-8").split()
    except (FileNotFoundError, UnicodeDecodeError):
        return None, ""
    if not words or not words[0].isdigit():
        return None, ""
    return int(words[0]), words[1] if len(words) > 1 else ""


def _running(pid: int, host: str, path: Path) -> bool:
    """Whether the process `pid` still runs (a lock from another host is taken as held: its processes are unseen)."""
    if host and host != socket.gethostname():
        return True
    if pid == os.getpid():
        return path.resolve() in _HELD
    return pid != 0 and psutil.pid_exists(pid)


def _take(path: Path) -> str | None:
    """Create the lock file `path` with this process id; refuse when a running process holds it. Returns a note
    when a stale lock was taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    note = None
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            if path.is_symlink():  # O_EXCL refuses any link, even one to nothing: no process can take it
                raise OnewordError(f"{path}: a link (to {os.readlink(path)}), not a lock file oneword wrote: delete "
                                   "the link and start again") from None
            pid, host = _owner(path)
            if pid is not None and _running(pid, host, path):
                where = f" on {host}" if host and host != socket.gethostname() else ""
                raise OnewordError(f"{path.parent}: another training of this name is running there (process {pid}"
                                   f"{where}); wait for it to end, or choose another name (if that process is not "
                                   f"a training, delete {path})")
            if pid is None and not _stale_torn(path):
                time.sleep(0.1)  # being written right now: look again
                continue
            path.unlink(missing_ok=True)
            note = f"took over {path} left by process {pid if pid is not None else '?'}, which no longer runs"
            continue
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
        except OSError as error:  # a full disk: no empty lock file is left to puzzle the next run
            path.unlink(missing_ok=True)
            raise OnewordError(f"{path}: cannot write the run's lock file: {error.strerror or error}") from None
        return note
    raise OnewordError(f"{path}: could not take the lock file (another process keeps replacing it)")


def _stale_torn(path: Path) -> bool:
    """A lock file without a process id, older than a second: torn by a kill while it was written."""
    try:
        return time.time() - path.stat().st_mtime > 1.0
    except FileNotFoundError:
        return False
