"""Ctrl-C and SIGTERM during training: the loop finishes its step, saves and ends, instead of dying mid-write."""

from __future__ import annotations

import signal
import threading


class StopSignals:
    """Ctrl-C and SIGTERM set a flag that the loop reads between steps; a second Ctrl-C stops at once.

    `shared` (several processes): a signal is only `pending` until the processes have agreed on it after a step,
    so that they all stop after the same step.
    """

    def __init__(self, shared: bool = False) -> None:
        self.received: int | None = None
        self.pending: int | None = None
        self.shared = shared
        self.saved: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if (self.received is not None or self.pending is not None) and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.shared:
            self.pending = signum
        else:
            self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)
