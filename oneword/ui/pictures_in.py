"""Pictures into the workspace from the browser: uploaded pictures and zip files, or the toy world's examples."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from oneword.errors import OnewordError
from oneword.toy.concepts import get_concept, write_concept_examples
from oneword.ui.paths import Workspace

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".txt")
"""What is taken in: pictures and their captions; anything else is skipped, with the reason."""
MAX_ZIP_BYTES = 1 << 30
"""Most bytes a zip may unpack to (1 GiB in all, as its directory declares and as read): a zip bomb is refused."""
MAX_ZIP_FILES = 10_000


def write_examples(workspace: Workspace, concept: str, folder: str = "pictures") -> str:
    """Write a toy concept's example pictures (with captions) into FOLDER; the message names the folder."""
    out = workspace.resolve("SRC", folder)
    if out.exists() and any(out.iterdir()):
        raise OnewordError(f"{workspace.relative(out)} already holds files: move them away to write the examples")
    written = write_concept_examples(get_concept(concept), out)
    return (f"wrote {len(written)} example pictures of the toy concept {concept} (captioned) to "
            f"{workspace.relative(out)}: use it as SRC")


def take_in(workspace: Workspace, files: list[str], folder: str) -> str:
    """Copy uploaded pictures and captions, and the pictures of uploaded zips, into FOLDER (by their names only)."""
    out = workspace.resolve("SRC", folder)
    taken, skipped = 0, []
    for file in files:
        path = Path(file)
        if path.suffix.lower() == ".zip":
            count, why = _unzip(path, out)
            taken += count
            skipped += why
        elif path.suffix.lower() in SUFFIXES:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / path.name)
            taken += 1
        else:
            skipped.append(f"{path.name}: not a picture ({', '.join(SUFFIXES)}) or a zip")
    lines = [f"{taken} files written to {workspace.relative(out)}, {len(skipped)} skipped"]
    return "\n".join([*lines, *(f"- skipped {why}" for why in skipped)])


def _unzip(path: Path, out: Path) -> tuple[int, list[str]]:
    """Extract the pictures of a zip into `out` by their base names (no member reaches outside `out`)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            declared = sum(m.file_size for m in members)
            if len(members) > MAX_ZIP_FILES or declared > MAX_ZIP_BYTES:
                raise OnewordError(f"{path.name}: unpacks to {len(members)} files, {declared} bytes; at most "
                                   f"{MAX_ZIP_FILES} files and {MAX_ZIP_BYTES} bytes are taken in (refused)")
            taken, skipped, budget = 0, [], MAX_ZIP_BYTES
            for member in members:
                name = Path(member.filename.replace("\\", "/")).name
                if not name or name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                    skipped.append(f"{path.name}:{member.filename}: not a picture or a caption")
                    continue
                out.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source:
                    data = source.read(budget + 1)  # never more than the budget, whatever the header says
                if len(data) > budget:
                    raise OnewordError(f"{path.name}: unpacks to more than {MAX_ZIP_BYTES} bytes (refused)")
                budget -= len(data)
                (out / name).write_bytes(data)
                taken += 1
            return taken, skipped
    except zipfile.BadZipFile as error:
        return 0, [f"{path.name}: not a readable zip ({error})"]
