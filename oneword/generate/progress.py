"""How far a drawing is, for whoever watches: a web UI's progress bar, a training job's phase line.

Every image oneword draws goes through `txt2img` (generation, previews, the scorers' samples), which reports each
denoising step to the watcher of the block it runs in. The watcher is scoped to a `with watching(...)` block of
one thread (a context variable), not passed down: the scorers and previews that draw know nothing of who shows
their progress, and a block without a watcher costs nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Drawing:
    """One denoising step of a batch of images done."""

    images: int
    """Images drawn together in the batch."""
    step: int
    """Denoising steps done, 1 to `steps`."""
    steps: int

    @property
    def done(self) -> bool:
        """The batch's last step: its images are drawn."""
        return self.step == self.steps


Watcher = Callable[[Drawing], None]

_watcher: ContextVar[Watcher | None] = ContextVar("oneword_drawing_watcher", default=None)


@contextlib.contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Within the block, every denoising step drawn in this thread is told to `watcher`."""
    token = _watcher.set(watcher)
    try:
        yield
    finally:
        _watcher.reset(token)


def step_callback(images: int, steps: int) -> Callable | None:
    """A diffusers `callback_on_step_end` that tells the watcher each step, or None when nothing watches."""
    watcher = _watcher.get()
    if watcher is None:
        return None

    def on_step_end(pipe, index: int, timestep, tensors: dict) -> dict:
        watcher(Drawing(images, index + 1, steps))
        return tensors

    return on_step_end
