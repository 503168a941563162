"""The base model the Create and Generate tabs draw with: loaded once, kept while the same one is asked for.
Training loads its own copy (it changes the model's flags and device while it runs)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from oneword.models.base import BaseModel


class ModelCache:
    """One loaded model at a time, used by one caller at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: str | None = None
        self._model: BaseModel | None = None

    @contextmanager
    def use(self, model: str) -> Iterator[BaseModel]:
        """The model `model` (a bundled name or a resolved path), on the best device, held for the block."""
        from oneword import load_base
        from oneword.models.device import pick_device, place

        with self._lock:
            if self._key != model or self._model is None:
                self._model = None  # let the old one go before the new one loads
                self._model = place(load_base(model), pick_device())
                self._key = model
            yield self._model
