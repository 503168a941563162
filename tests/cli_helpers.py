"""Run the real `oneword` entry point in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_oneword(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m oneword ARGS`, output captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "oneword", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The non-empty lines the command wrote to stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


def run_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`oneword ARGS` through `main()` in this process (no interpreter start-up): exit code, stdout, stderr."""
    from oneword.cli import main

    monkeypatch.setattr(sys, "argv", ["oneword", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def fill_the_disk(monkeypatch, suffix: str) -> None:
    """Make every write to a file whose name ends with `suffix` fail as on a full disk (ENOSPC)."""
    import errno

    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fdopen(fd, mode="r", *args, **kwargs):
        file = real_fdopen(fd, mode, *args, **kwargs)
        return FullDisk(file) if os.readlink(f"/proc/self/fd/{fd}").endswith(suffix) else file

    monkeypatch.setattr(os, "fdopen", fdopen)
