"""Read pickle-based files (`.pt`, `.ckpt`, `.bin`) without ever executing code from them."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from oneword.errors import OnewordError


def load_pickle(path: Path, *, mmap: bool = False) -> Any:
    """Load a torch pickle with `weights_only=True`: tensors, dicts, lists, numbers and strings only.

    A file that needs anything else (a class, a function: what a malicious pickle uses to run code) is refused
    with a one-line OnewordError and nothing from it is executed. `mmap=True` maps tensor storage from disk
    instead of reading it (zip-format files), so a large checkpoint is not copied into memory.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        culprit = _culprit(str(e))
        if culprit:
            raise OnewordError(
                f"{path}: refused: loading it would run code from the file ({culprit}); only plain tensors are accepted"
            ) from None
        raise OnewordError(f"{path}: not a readable PyTorch file (not a pickle of plain tensors)") from None
    except (IndexError, KeyError, TypeError, EOFError):  # what torch's unpickler raises on damaged or cut opcodes
        raise OnewordError(f"{path}: not a readable PyTorch file (damaged pickle data)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise OnewordError(f"{path}: not a readable PyTorch file ({str(e).splitlines()[0]})") from None


def _culprit(message: str) -> str:
    """What a refused pickle asked for (`posix.system`, a class ...), or "" when it is not such a refusal."""
    for line in message.splitlines():
        if "GLOBAL" in line or "Unsupported global" in line:
            words = line.replace(":", " ").split()
            for i, word in enumerate(words):
                if word in ("GLOBAL", "global") and i + 1 < len(words):
                    return f"it asks for {words[i + 1]}"
            return "it asks for a Python object"
    return ""
