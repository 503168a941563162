"""Pictures into the workspace from the browser: uploads, zips (nothing out of the folder, no zip bombs), the toy
world's examples, and what an empty workspace's Prepare says."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image

from oneword.errors import OnewordError
from oneword.ui import pictures_in
from oneword.ui.paths import Workspace
from oneword.ui.tabs import prepare


def _form(space: Workspace) -> list:
    specs = prepare.prepare_specs()
    values = [prepare.FORM_DEFAULTS.get(s.name, s.default) for s in specs]
    return [v.as_posix() if isinstance(v, Path) else v for v in values]


def test_an_empty_workspace_says_what_to_do_then_the_examples_prepare(tmp_path):
    space = Workspace.at(tmp_path)
    note, _, _ = prepare.run(space, prepare.prepare_specs(), _form(space), "")
    assert note == ("**error:** SRC pictures: no such folder yet; put pictures there with Pictures in (upload "
                    "pictures or a zip, or write the example pictures), then run again")
    said = pictures_in.write_examples(space, "star", "pictures/")
    assert said == "wrote 12 example pictures of the toy concept star (captioned) to pictures: use it as SRC"
    note, _, _ = prepare.run(space, prepare.prepare_specs(), _form(space), "")
    assert note.startswith("12 pictures processed, 0 skipped, ")
    with pytest.raises(OnewordError, match="pictures already holds files"):
        pictures_in.write_examples(space, "star", "pictures/")


def test_uploads_and_zips_land_in_the_folder_by_their_names_only(tmp_path, monkeypatch):
    space = Workspace.at(tmp_path / "ws")
    up = tmp_path / "up"
    up.mkdir()
    Image.new("RGB", (64, 64)).save(up / "a.png")
    (up / "run.exe").write_bytes(b"MZ")
    with zipfile.ZipFile(up / "set.zip", "w") as archive:
        buffer = (up / "a.png").read_bytes()
        archive.writestr("../../escape.png", buffer)
        archive.writestr("/abs/b.png", buffer)
        archive.writestr("sub/c.txt", "a caption")
        archive.writestr("script.py", "print(1)")
    said = pictures_in.take_in(space, [str(up / n) for n in ("a.png", "run.exe", "set.zip")], "pictures")
    assert said.splitlines() == [
        "4 files written to pictures, 2 skipped",
        "- skipped run.exe: not a picture (.png, .jpg, .jpeg, .webp, .bmp, .txt) or a zip",
        "- skipped set.zip:script.py: not a picture or a caption"]
    assert sorted(p.name for p in (space.root / "pictures").iterdir()) == ["a.png", "b.png", "c.txt", "escape.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["up", "ws"]  # nothing beside the workspace
    monkeypatch.setattr(pictures_in, "MAX_ZIP_BYTES", 1000)
    with zipfile.ZipFile(up / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.png", b"\0" * 100_000)
    with pytest.raises(OnewordError, match=r"bomb.zip: unpacks to 1 files, 100000 bytes; at most 10000 files and "
                                           r"1000 bytes are taken in \(refused\)"):
        pictures_in.take_in(space, [str(up / "bomb.zip")], "pictures/bomb")
    assert not (space.root / "pictures" / "bomb").exists()
