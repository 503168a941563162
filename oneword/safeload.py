"""Read pickle-based files (`.pt`, `.ckpt`, `.bin`) without ever executing code from them."""

from __future__ import annotations

import contextlib
import pickle
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from oneword.errors import OnewordError, first_line

PARAMETER_DICT = torch.nn.ParameterDict
"""The container the original Textual Inversion code (and early A1111) saved `string_to_param` in. Admitting it
lets a file have the unpickler build one from stored data (its constructor, its `__setstate__`); nothing else
is added to what weights_only allows."""
_GLOBAL = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")


class UnsafePickle(OnewordError):
    """A pickle that would run code (or build an object) to load: refused, nothing from it executed."""


def load_pickle(path: Path, *, mmap: bool = False, parameter_dict: bool = False) -> Any:
    """Load a torch pickle with `weights_only=True`: tensors, dicts, lists, numbers and strings only.

    A file that needs anything else (a class, a function: what a malicious pickle uses to run code) is refused
    with a one-line OnewordError naming what it asks for, and nothing from it is executed. `parameter_dict`
    also admits torch.nn.ParameterDict (old embeddings). `mmap=True` maps tensor storage from disk instead of
    reading it (zip-format files), so a large checkpoint is not copied into memory.
    """
    try:
        with _allowing([PARAMETER_DICT] if parameter_dict else []):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        refused = pickle_refusal(path, e)
        if refused is not None:
            raise refused from None
        raise OnewordError(f"{path}: not a readable PyTorch file (not a pickle of plain tensors)") from None
    except (IndexError, KeyError, TypeError, EOFError, AttributeError, AssertionError, struct.error):
        # what torch raises on damaged or cut opcodes, on float8 storages in its older format (which it writes but
        # cannot read back), and (an assert of its own) on that format's storage list naming storage it lacks
        raise OnewordError(f"{path}: not a readable PyTorch file (damaged pickle data)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise OnewordError(f"{path}: not a readable PyTorch file ({first_line(e)})") from None


def pickle_refusal(path: Path, error: BaseException) -> UnsafePickle | None:
    """The refusal of `path` when `error`, or an error it was raised from, is torch's weights_only loader refusing a
    global (another library's loader wraps it: diffusers' `from_pretrained` in an OSError); None otherwise. Torch's
    own message advises loading with weights_only=False, which would run the file's code: it is not repeated."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        culprit = _culprit(str(cause)) if isinstance(cause, pickle.UnpicklingError) else ""
        if culprit:
            return UnsafePickle(f"{path}: refused: loading it would run code from the file ({culprit}); only plain "
                                "tensors are accepted")
        cause = cause.__cause__ or cause.__context__
    return None


@contextlib.contextmanager
def _allowing(classes: list[type]) -> Iterator[None]:
    """weights_only also accepts `classes` inside the block (torch.serialization.safe_globals, or its 2.4 form)."""
    if not classes:
        yield
    elif hasattr(torch.serialization, "safe_globals"):
        with torch.serialization.safe_globals(classes):
            yield
    else:  # torch 2.4 has only the global list
        before = torch.serialization.get_safe_globals()
        torch.serialization.add_safe_globals(classes)
        try:
            yield
        finally:
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals(before)


def _culprit(message: str) -> str:
    """What a refused pickle asked for (`it asks for posix.system`), or "" when it is not such a refusal."""
    found = _GLOBAL.search(message)
    if found:
        return f"it asks for {found.group(1)}"
    if "Unsupported global" in message or "allowlisted" in message or "unrecognized function" in message:
        return "it asks for a Python object"
    return ""
