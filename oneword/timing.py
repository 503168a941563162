"""Where the seconds before training go: named stretches of the code path (`with timed("latent caching"):`),
recorded only while a recording is open (benchmarks/first_step.py opens one); otherwise `timed` does nothing and
nothing is printed or kept."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, float, float], None]
"""Called with a stretch's name and its start and end (seconds since the epoch) as it ends."""
_listeners: list[Listener] = []


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Time the block as `name` for the open recordings (none: nothing is measured)."""
    if not _listeners:
        yield
        return
    start = time.time()
    try:
        yield
    finally:
        end = time.time()
        for listener in _listeners:
            listener(name, start, end)


@contextmanager
def recording(listener: Listener) -> Iterator[None]:
    """Give `listener` every stretch timed inside the block."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
