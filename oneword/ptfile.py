"""Write `.pt`, `.ckpt` and `.optim` files that A1111's safe loader (`modules/safe.py`) accepts.

A1111 checks every pickle file before loading it: each zip entry must match `A1111_ENTRY` and the pickle may
name only the globals of `A1111_GLOBALS`. PyTorch 2.7 and later add `.format_version` and
`.storage_alignment` entries, which A1111 refuses ("bad file inside ..."). torch.load does not need them: it
reads a file without them as the older format version, which it then is. So `save_pt` lets torch.save write
the archive, then copies it without those entries, each record still 64-byte aligned (as torch writes them) so
that `torch.load(mmap=True)` maps tensors in place.
"""

from __future__ import annotations

import os
import pickletools
import re
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

import torch

A1111_ENTRY = re.compile(r"^([^/]+)/((data/\d+)|version|byteorder|.data/serialization_id|(data\.pkl))$")
"""The zip entries A1111 v1.10 accepts in a pickle file."""
METADATA_PREFIX = "."
"""torch names its metadata records `.NAME` (`.format_version`, `.storage_alignment`); those A1111 refuses are
left out: torch.load reads an archive without them as the older format it then is."""
A1111_GLOBALS = frozenset({
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_device_tensor_from_numpy",
    *(f"torch.{name}Storage" for name in ("Float", "Half", "Int", "Long", "Double", "Byte", "BFloat16")),
    "torch.float32", "torch.nn.modules.container.ParameterDict",
    "numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct", "numpy.dtype", "numpy.ndarray",
    "_codecs.encode", "__builtin__.set",
})
"""The globals A1111's unpickler allows (module.name); anything else makes it refuse the file."""
ALIGNMENT = 64
"""Records start at multiples of this in the file, as torch.save places them (mmap needs aligned tensors)."""
PADDING_ID = b"FB"
"""The zip extra-field id torch uses for its alignment padding."""
SPOOL_BYTES = 64 << 20
"""Archives up to this size are rewritten in memory; larger ones spool to a temporary file beside the target."""
LOCAL_HEADER = 30
"""Bytes of a zip local header before its file name and extra field."""
ZIP64_EXTRA = 20
"""Bytes zipfile adds to the extra field of a local header with zip64 sizes."""


def save_pt(obj: Any, dest: Path | IO[bytes]) -> None:
    """torch.save `obj` to `dest` (a path or a binary file) as an archive A1111's safe loader accepts.

    ValueError when `obj` needs a global A1111 refuses (a bool tensor's BoolStorage, a class): such a file
    would be written but never load there.
    """
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "wb") as f:
            save_pt(obj, f)
        return
    name = getattr(dest, "name", None)
    folder = Path(name).parent if isinstance(name, str) else None
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=folder) as spool:
        torch.save(obj, spool)
        spool.seek(0)
        with zipfile.ZipFile(spool) as archive:
            entries = _kept_entries(archive)
            for info in entries:
                if info.filename.endswith("/data.pkl"):
                    _check_globals(archive.read(info))
            _copy(archive, entries, dest)


def _pickle_globals(data: bytes) -> set[str]:
    """The globals (module.name) a protocol-2 pickle names, read without running it."""
    found = set()
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("GLOBAL", "INST"):
            found.add(".".join(str(arg).split(" ", 1)))
        elif opcode.name == "STACK_GLOBAL":
            found.add("(a STACK_GLOBAL)")  # torch.save writes protocol 2, which never uses it
    return found


def _kept_entries(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's entries A1111 accepts; ValueError for one it refuses that is not torch metadata (data)."""
    kept = []
    for info in archive.infolist():
        if A1111_ENTRY.match(info.filename):
            kept.append(info)
        elif not info.filename.split("/", 1)[-1].startswith(METADATA_PREFIX):
            raise ValueError(f"torch.save wrote an entry A1111 refuses: {info.filename}")
    return kept


def _check_globals(data: bytes) -> None:
    refused = sorted(_pickle_globals(data) - A1111_GLOBALS)
    if refused:
        raise ValueError(f"the file would need {', '.join(refused)}, which A1111's safe loader refuses")


def _copy(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], dest: IO[bytes]) -> None:
    """Write `entries` stored (uncompressed) into a new archive on `dest`, each record's data aligned."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as out:
        for info in entries:
            target = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            target.compress_type = zipfile.ZIP_STORED
            target.file_size = info.file_size
            zip64 = info.file_size * 1.05 > zipfile.ZIP64_LIMIT  # zipfile's own rule for a zip64 local header
            start = dest.tell() + LOCAL_HEADER + len(info.filename.encode("utf-8")) + 4
            start += ZIP64_EXTRA if zip64 else 0
            pad = -start % ALIGNMENT
            target.extra = PADDING_ID + struct.pack("<H", pad) + b"Z" * pad
            with archive.open(info) as src, out.open(target, "w", force_zip64=zip64) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
