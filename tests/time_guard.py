"""Guards for tests of hostile input: a piece of work must end within a time limit instead of hanging the suite."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class TookTooLong(AssertionError):
    """The guarded work ran past its limit (a hang or an endless loop)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail with TookTooLong when the block runs longer than `seconds` (main thread only; uses SIGALRM)."""

    def expire(signum, frame):
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
