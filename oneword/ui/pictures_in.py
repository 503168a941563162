"""Pictures into the workspace from the browser: uploaded pictures and zip files, or the toy world's examples.

Each file an upload brings (an uploaded file, or a member of an uploaded zip) is written into SRC by its base name
through `oneword.outputs.path_inside`, or skipped with its reason: never through a link, never over an existing
file unless the user asks (Replace existing files), never beyond the limits below. A file is copied in chunks,
so one upload costs at most MAX_UPLOAD_BYTES on disk and a chunk or two in memory."""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from oneword.errors import OnewordError, first_line
from oneword.files import atomic_write
from oneword.outputs import folder_problem, path_inside
from oneword.toy.concepts import get_concept, write_concept_examples
from oneword.ui.paths import Workspace

CAPTION_SUFFIX = ".txt"
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", CAPTION_SUFFIX)
"""What is taken in: pictures and their captions; anything else is skipped, with the reason."""
MIB = 1 << 20
MAX_PICTURE_BYTES = 128 * MIB
"""Largest picture taken in: an 8K picture (7680 x 4320) with alpha, uncompressed (BMP), is 127 MiB; its PNG or
JPEG is smaller."""
MAX_CAPTION_BYTES = MIB
"""Largest caption taken in: a caption is a line of words (a tagger's hundred tags are a few KiB)."""
MAX_UPLOAD_BYTES = 2 << 30
"""Most bytes one upload writes, its files and zip members together (2 GiB: a thousand pictures of 2 MiB)."""
MAX_ZIP_FILES = 10_000
"""Most files one zip may hold."""
MAX_ZIP_DIRECTORY_BYTES = MAX_ZIP_FILES * 1024
"""Largest zip directory read (10 MiB: MAX_ZIP_FILES entries with names of up to about 1,000 bytes); it is read
whole and every entry becomes an object, so its size is checked first, from the zip's end record."""
MAX_RATIO = 200
"""Most times its packed size a zip member over MIB may unpack to: pictures barely compress (PNG and JPEG about
1 time, a BMP of flat colours some tens), while a zip bomb's member unpacks to about a thousand times its size."""
CHUNK = MIB
"""Bytes read and written at a time."""
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated", zipfile.ZIP_BZIP2: "bzip2",
               zipfile.ZIP_LZMA: "lzma"}
"""Compression methods by number; only stored and deflated members are taken: Python's bzip2 and LZMA readers
unpack a whole block at once, whatever is asked, and every common zip tool deflates."""
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
"""What reading a damaged member raises: a wrong CRC, a broken deflate stream, a zip cut short."""


class _Skip(Exception):  # noqa: N818 (not an error: a file left out, with its reason)
    """A file of the upload that is not written, with the reason."""


def write_examples(workspace: Workspace, concept: str, folder: str = "pictures") -> str:
    """Write a toy concept's example pictures (with captions) into FOLDER; the message names the folder."""
    out = workspace.resolve("SRC", folder)
    if out.exists() and any(out.iterdir()):
        raise OnewordError(f"{workspace.relative(out)} already holds files: move them away to write the examples")
    written = write_concept_examples(get_concept(concept), out)
    return (f"wrote {len(written)} example pictures of the toy concept {concept} (captioned) to "
            f"{workspace.relative(out)}: use it as SRC")


def take_in(workspace: Workspace, files: list[str], folder: str, replace: bool = False) -> str:
    """Copy uploaded pictures and captions, and the pictures and captions of uploaded zips, into FOLDER by their
    base names; `replace` lets them replace existing files. The message counts what is on disk and lists every file
    skipped with its reason."""
    out = workspace.resolve("SRC", folder)
    problem = folder_problem("SRC", out)
    if problem:
        raise OnewordError(problem)
    intake = _Intake(workspace, out, replace, MAX_UPLOAD_BYTES)
    for file in files:
        path = Path(file)
        if path.suffix.lower() == ".zip":
            intake.unzip(path)
        elif path.suffix.lower() in SUFFIXES:
            intake.take_file(path)
        else:
            intake.skipped.append(f"{path.name}: not a picture ({', '.join(SUFFIXES)}) or a zip")
    return intake.said()


@dataclass
class _Intake:
    """One upload's files as they are written into `out`, and the reasons of those skipped."""

    workspace: Workspace
    out: Path
    replace: bool
    left: int
    """Bytes the upload may still write."""
    written: dict[str, str] = field(default_factory=dict)
    """Each written file's name, case folded (a case-insensitive file system holds one of `a.png` and `A.PNG`), to
    where it came from."""
    replaced: int = 0
    kept: int = 0
    skipped: list[str] = field(default_factory=list)

    def said(self) -> str:
        """What the page shows: the counts, then each file skipped with its reason."""
        replaced = f" ({self.replaced} replaced)" if self.replaced else ""
        lines = [f"{len(self.written)} files written to {self.workspace.relative(self.out)}{replaced}, "
                 f"{len(self.skipped)} skipped", *(f"- skipped {self.workspace.shown(why)}" for why in self.skipped)]
        if self.kept:
            lines.append("Tick Replace existing files and upload again to replace the existing files.")
        return "\n".join(lines)

    def take_file(self, path: Path) -> None:
        """Take one uploaded picture or caption."""
        try:
            with _reading(path.name):
                source = open(path, "rb")  # noqa: SIM115 (closed below; only opening is a reading error here)
            with source:
                self._write(source, path.name, path.name, os.fstat(source.fileno()).st_size)
        except _Skip as skip:
            self.skipped.append(str(skip))

    def unzip(self, path: Path) -> None:
        """Take the pictures and captions of the zip at `path`, member by member."""
        try:
            entries, directory = _directory(path)
            if entries > MAX_ZIP_FILES:
                raise _Skip(f"{path.name}: holds {entries} files; at most {MAX_ZIP_FILES} are taken from one zip")
            if directory > MAX_ZIP_DIRECTORY_BYTES:
                raise _Skip(f"{path.name}: its directory is {directory:,} bytes; at most "
                            f"{_amount(MAX_ZIP_DIRECTORY_BYTES)} is read")
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                declared = sum(m.file_size for m in members)
                if len(members) > MAX_ZIP_FILES:
                    raise _Skip(f"{path.name}: holds {len(members)} files; at most {MAX_ZIP_FILES} are taken from "
                                "one zip")
                if declared > self.left:
                    raise _Skip(f"{path.name}: unpacks to {declared:,} bytes; one upload writes at most "
                                f"{_amount(MAX_UPLOAD_BYTES)}")
                for member in members:
                    try:
                        self._take_member(archive, member, f"{path.name}:{member.filename}")
                    except _Skip as skip:
                        self.skipped.append(str(skip))
        except (zipfile.BadZipFile, OSError) as error:
            self.skipped.append(f"{path.name}: not a readable zip ({first_line(error)})")
        except _Skip as skip:
            self.skipped.append(str(skip))

    def _take_member(self, archive: zipfile.ZipFile, member: zipfile.ZipInfo, where: str) -> None:
        """Take one zip member, or raise _Skip with the reason."""
        name = Path(member.filename.replace("\\", "/")).name
        if Path(name).suffix.lower() not in SUFFIXES:
            raise _Skip(f"{where}: not a picture or a caption")
        if member.flag_bits & 0x1:
            raise _Skip(f"{where}: encrypted (a password is needed); zip it without a password")
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            method = ZIP_METHODS.get(member.compress_type, "unknown")
            raise _Skip(f"{where}: compressed with method {member.compress_type} ({method}); only stored and "
                        "deflated members are taken")
        size, packed = member.file_size, max(member.compress_size, 1)
        _limit(name, size, where)
        if size > MIB and size > MAX_RATIO * packed:
            raise _Skip(f"{where}: unpacks to {size:,} bytes from {member.compress_size:,} ({size // packed} times "
                        f"its size); a member over 1 MiB may unpack to at most {MAX_RATIO} times its size (a zip "
                        "bomb)")
        with _reading(where):
            source = archive.open(member)
        with source:
            self._write(source, name, where, size)

    def _write(self, source: IO[bytes], name: str, where: str, size: int) -> None:
        """Write `source` (`size` bytes, as its file or zip says) as OUT/`name`, or raise _Skip with the reason."""
        if name.casefold() in self.written:
            raise _Skip(f"{where}: its name {name} is taken by {self.written[name.casefold()]} in this upload")
        try:
            path = path_inside(self.out, name, what=where, overwrite=self.replace)
        except OnewordError as error:
            self.kept += str(error).endswith("(not replaced)")
            raise _Skip(str(error)) from None
        limit = _limit(name, size, where)
        if size > self.left:
            raise _Skip(f"{where}: {size:,} bytes would take the upload past {_amount(MAX_UPLOAD_BYTES)}, the most "
                        "one upload writes")
        existed = os.path.lexists(path)
        copied = []
        try:
            atomic_write(path, lambda f: copied.append(_copy(source, f, where, min(limit, self.left))),
                         overwrite=self.replace)
        except FileExistsError:  # a file that appeared while this one was written
            self.kept += 1
            raise _Skip(f"{where}: {path} already exists (not replaced)") from None
        except OSError as error:
            raise OnewordError(f"{where}: {path} could not be written ({error.strerror or first_line(error)}); "
                               f"{len(self.written)} files were written before it") from None
        self.left -= copied[0]
        self.replaced += existed
        self.written[name.casefold()] = where


def _directory(path: Path) -> tuple[int, int]:
    """The number of entries and the size in bytes of a zip's directory, as its end record (or zip64 end record)
    says; (0, 0) where there is none (zipfile then says what is wrong). Read from the file's last 64 KiB."""
    end_size, locator_size = 22, 20  # the end record, and the zip64 locator just before it
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - (1 << 16) - end_size))
        tail = f.read()
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or len(tail) - end < end_size:
            return 0, 0
        entries = int.from_bytes(tail[end + 10:end + 12], "little")
        directory = int.from_bytes(tail[end + 12:end + 16], "little")
        locator = tail[end - locator_size:end] if end >= locator_size else b""
        if locator[:4] != b"PK\x06\x07":
            return entries, directory
        f.seek(int.from_bytes(locator[8:16], "little"))
        record = f.read(56)  # the zip64 end record: count at 32, directory size at 40
    if record[:4] != b"PK\x06\x06" or len(record) < 56:
        return entries, directory
    return int.from_bytes(record[32:40], "little"), int.from_bytes(record[40:48], "little")  # as zipfile reads it


def _limit(name: str, size: int, where: str) -> int:
    """The most bytes the picture or caption `name` may hold; _Skip when its `size` is more."""
    caption = Path(name).suffix.lower() == CAPTION_SUFFIX
    limit = MAX_CAPTION_BYTES if caption else MAX_PICTURE_BYTES
    if size > limit:
        raise _Skip(f"{where}: {size:,} bytes; a {'caption' if caption else 'picture'} is at most {_amount(limit)}")
    return limit


def _copy(source: IO[bytes], target: IO[bytes], where: str, limit: int) -> int:
    """Copy `source` to `target` a chunk at a time, returning the bytes copied; _Skip when it holds more than
    `limit` bytes or cannot be read."""
    copied = 0
    while True:
        with _reading(where):
            chunk = source.read(CHUNK)
        if not chunk:
            return copied
        copied += len(chunk)
        if copied > limit:
            raise _Skip(f"{where}: more than {_amount(limit)} when read (stopped there)")
        target.write(chunk)


@contextmanager
def _reading(where: str) -> Iterator[None]:
    """Turn an error reading the file `where` (a damaged member, a file gone) into its reason for being skipped."""
    try:
        yield
    except READ_ERRORS as error:
        raise _Skip(f"{where}: unreadable ({first_line(error)})") from None


def _amount(size: int) -> str:
    """A limit in words: `2 GiB`, `128 MiB`, else in bytes."""
    if size % (1 << 30) == 0:
        return f"{size >> 30} GiB"
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size:,} bytes"
