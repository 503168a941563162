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
    monkeypatch.setattr(pictures_in, "MAX_UPLOAD_BYTES", 1000)
    with zipfile.ZipFile(up / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.png", b"\0" * 100_000)
    said = pictures_in.take_in(space, [str(up / "bomb.zip")], "pictures/bomb")
    assert said.splitlines() == ["0 files written to pictures/bomb, 1 skipped",
                                 "- skipped bomb.zip: unpacks to 100,000 bytes; one upload writes at most 1,000 bytes"]
    assert not (space.root / "pictures" / "bomb").exists()


def _zip(path: Path, members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def _patch_member(path: Path, name: str, *, local: dict[int, int] = (), central: dict[int, int] = ()) -> None:
    """Set bytes of one member's local header (offset from its start) and central directory entry."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        start = archive.getinfo(name).header_offset
    entry = data.rfind(name.encode()) - 46
    assert data[entry:entry + 4] == b"PK\x01\x02" and data[entry + 46:entry + 46 + len(name)] == name.encode()
    for offset, value in dict(local).items():
        data[start + offset] = value
    for offset, value in dict(central).items():
        data[entry + offset] = value
    path.write_bytes(bytes(data))


def _first_data_byte(path: Path, name: str) -> int:
    """Where a member's (compressed) data starts in the zip."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        start = archive.getinfo(name).header_offset
    name_length, extra_length = int.from_bytes(data[start + 26:start + 28], "little"), int.from_bytes(
        data[start + 28:start + 30], "little")
    return start + 30 + name_length + extra_length


def _picture(colour: int = 0) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    Image.new("RGB", (8, 8), (colour, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_member_named_like_a_link_out_or_an_existing_picture_is_skipped_with_its_reason(tmp_path):
    space = Workspace.at(tmp_path / "ws")
    pictures = space.root / "pictures"
    pictures.mkdir()
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"mine")
    (pictures / "link.png").symlink_to(outside)
    (pictures / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (pictures / "old.png").write_bytes(b"old")
    up = tmp_path / "up"
    up.mkdir()
    (up / "old.png").write_bytes(_picture(1))
    _zip(up / "set.zip", [("link.png", _picture(2)), ("gone.png", _picture(3)), ("x/old.png", _picture(4)),
                          ("x/a.png", _picture(5)), ("y/a.png", _picture(6)), ("y/A.PNG", _picture(7))])
    said = pictures_in.take_in(space, [str(up / "set.zip"), str(up / "old.png")], "pictures")
    assert said.splitlines() == [
        "1 files written to pictures, 6 skipped",
        "- skipped set.zip:link.png: pictures/link.png is a link; nothing is written through it",
        "- skipped set.zip:gone.png: pictures/gone.png is a link; nothing is written through it",
        "- skipped set.zip:x/old.png: pictures/old.png already exists (not replaced)",
        "- skipped set.zip:y/a.png: its name a.png is taken by set.zip:x/a.png in this upload",
        "- skipped set.zip:y/A.PNG: its name A.PNG is taken by set.zip:x/a.png in this upload",
        "- skipped old.png: pictures/old.png already exists (not replaced)",
        "Tick Replace existing files and upload again to replace the existing files."]
    assert outside.read_bytes() == b"mine" and not (tmp_path / "nowhere.png").exists()
    assert (pictures / "old.png").read_bytes() == b"old" and (pictures / "a.png").read_bytes() == _picture(5)
    assert sorted(p.name for p in pictures.iterdir()) == ["a.png", "gone.png", "link.png", "old.png"]

    said = pictures_in.take_in(space, [str(up / "old.png"), str(up / "set.zip")], "pictures", replace=True)
    assert said.splitlines()[:2] == ["2 files written to pictures (2 replaced), 5 skipped",
                                     "- skipped set.zip:link.png: pictures/link.png is a link; nothing is written "
                                     "through it"]
    assert said.splitlines()[3] == "- skipped set.zip:x/old.png: its name old.png is taken by old.png in this upload"
    assert (pictures / "old.png").read_bytes() == _picture(1) and (pictures / "a.png").read_bytes() == _picture(5)
    assert outside.read_bytes() == b"mine" and (pictures / "link.png").is_symlink()


def test_a_broken_member_is_skipped_and_the_others_are_written_and_counted(tmp_path):
    space = Workspace.at(tmp_path / "ws")
    up = tmp_path / "up"
    up.mkdir()
    good, bad_crc = _picture(1), _picture(2)
    crc = _zip(up / "crc.zip", [("a.png", good), ("b.png", bad_crc), ("c.png", _picture(3))])
    data = crc.read_bytes()
    at = _first_data_byte(crc, "b.png") + 20
    crc.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])
    odd = _zip(up / "odd.zip", [("locked.png", good), ("method.png", good), ("deflate.txt", b"a caption " * 50),
                                ("n" * 300 + ".png", good), ("last.png", _picture(4))], zipfile.ZIP_DEFLATED)
    _patch_member(odd, "locked.png", local={6: 1}, central={8: 1})
    _patch_member(odd, "method.png", local={8: 99}, central={10: 99})
    data = odd.read_bytes()
    at = _first_data_byte(odd, "deflate.txt")
    odd.write_bytes(data[:at] + b"\xff" + data[at + 1:])  # block type 3: not deflate
    bz2 = _zip(up / "bz2.zip", [("a.png", good)], zipfile.ZIP_BZIP2)  # unpacked a whole block at once: refused
    said = pictures_in.take_in(space, [str(crc), str(odd), str(bz2)], "pictures")
    assert said.splitlines() == [
        "3 files written to pictures, 6 skipped",
        "- skipped crc.zip:b.png: unreadable (Bad CRC-32 for file 'b.png')",
        "- skipped odd.zip:locked.png: encrypted (a password is needed); zip it without a password",
        "- skipped odd.zip:method.png: compressed with method 99 (unknown); only stored and deflated members are "
        "taken",
        "- skipped odd.zip:deflate.txt: unreadable (Error -3 while decompressing data: invalid block type)",
        f"- skipped odd.zip:{'n' * 300}.png: the name {'n' * 40!r}... is 304 bytes long (a file's name holds at "
        "most 241: 255 less the 14 its temporary file adds)",
        "- skipped bz2.zip:a.png: compressed with method 12 (bzip2); only stored and deflated members are taken"]
    pictures = space.root / "pictures"
    assert sorted(p.name for p in pictures.iterdir()) == ["a.png", "c.png", "last.png"]
    assert (pictures / "a.png").read_bytes() == good and (pictures / "last.png").read_bytes() == _picture(4)


def test_a_zip_bomb_and_oversized_members_are_skipped_naming_the_member_and_the_limit(tmp_path, monkeypatch):
    space = Workspace.at(tmp_path / "ws")
    up = tmp_path / "up"
    up.mkdir()
    mib = 1 << 20
    _zip(up / "bomb.zip", [("big.png", bytes(3 * mib)), ("cap.txt", b"word " * (mib // 4)),
                           ("ok.png", _picture(1)), ("ok.txt", b"a caption")], zipfile.ZIP_DEFLATED)
    (up / "huge.png").write_bytes(bytes(2 * mib + 1))
    monkeypatch.setattr(pictures_in, "MAX_PICTURE_BYTES", 2 * mib)
    said = pictures_in.take_in(space, [str(up / "bomb.zip"), str(up / "huge.png")], "pictures")
    assert said.splitlines() == [
        "2 files written to pictures, 3 skipped",
        "- skipped bomb.zip:big.png: 3,145,728 bytes; a picture is at most 2 MiB",
        "- skipped bomb.zip:cap.txt: 1,310,720 bytes; a caption is at most 1 MiB",
        "- skipped huge.png: 2,097,153 bytes; a picture is at most 2 MiB"]
    assert sorted(p.name for p in (space.root / "pictures").iterdir()) == ["ok.png", "ok.txt"]

    monkeypatch.setattr(pictures_in, "MAX_PICTURE_BYTES", 4 * mib)
    said = pictures_in.take_in(space, [str(up / "bomb.zip")], "bombs")
    assert said.splitlines()[1].startswith("- skipped bomb.zip:big.png: unpacks to 3,145,728 bytes from ")
    assert said.splitlines()[1].endswith(f" times its size); a member over 1 MiB may unpack to at most "
                                         f"{pictures_in.MAX_RATIO} times its size (a zip bomb)")
    assert sorted(p.name for p in (space.root / "bombs").iterdir()) == ["ok.png", "ok.txt"]

    monkeypatch.setattr(pictures_in, "MAX_UPLOAD_BYTES", 3 * mib)
    monkeypatch.setattr(pictures_in, "MAX_RATIO", 10_000)
    said = pictures_in.take_in(space, [str(up / "bomb.zip")], "bombs")
    total = 3 * mib + 5 * (mib // 4) + len(_picture(1)) + len(b"a caption")
    assert said.splitlines() == [
        "0 files written to bombs, 1 skipped",
        f"- skipped bomb.zip: unpacks to {total:,} bytes; one upload writes at most 3 MiB"]
    monkeypatch.setattr(pictures_in, "MAX_ZIP_FILES", 3)
    said = pictures_in.take_in(space, [str(up / "bomb.zip")], "bombs")
    assert said.splitlines()[1] == "- skipped bomb.zip: holds 4 files; at most 3 are taken from one zip"
    assert sorted(p.name for p in (space.root / "bombs").iterdir()) == ["ok.png", "ok.txt"]  # as they were
    monkeypatch.setattr(pictures_in, "MAX_UPLOAD_BYTES", mib)
    for name in ("one.png", "two.png"):
        (up / name).write_bytes(bytes(600_000))
    said = pictures_in.take_in(space, [str(up / "one.png"), str(up / "two.png")], "plain")
    assert said.splitlines() == ["1 files written to plain, 1 skipped",
                                 "- skipped two.png: 600,000 bytes would take the upload past 1 MiB, the most one "
                                 "upload writes"]


def test_a_member_is_streamed_to_its_file_never_held_whole_in_memory(tmp_path):
    import random
    import tracemalloc

    space = Workspace.at(tmp_path / "ws")
    member = random.Random(0).randbytes(16 << 20)  # incompressible: deflated to about its size
    _zip(tmp_path / "big.zip", [("big.png", member)], zipfile.ZIP_DEFLATED)
    tracemalloc.start()
    try:
        said = pictures_in.take_in(space, [str(tmp_path / "big.zip")], "pictures")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert said == "1 files written to pictures, 0 skipped"
    assert (space.root / "pictures" / "big.png").read_bytes() == member
    assert peak < 8 << 20


def test_the_prepare_tabs_upload_replaces_existing_files_only_when_replace_is_ticked(tmp_path):
    import gradio as gr

    from oneword.ui.app import build_app
    from oneword.ui.jobs import Jobs

    space = Workspace.at(tmp_path / "ws")
    app = build_app(space, Jobs(lambda *a, **k: None))
    blocks = {b._id: b for b in app.blocks.values()}
    (upload,) = [f for f in app.fns.values()
                 if ("prepare-upload", "upload") in [(getattr(blocks.get(i), "elem_id", None), e)
                                                     for i, e in f.targets]]
    assert [blocks[b._id].elem_id for b in upload.inputs] == ["prepare-upload", "prepare-src", "prepare-replace"]
    replace = upload.inputs[2]
    assert isinstance(replace, gr.Checkbox) and replace.value is False and replace.label == "Replace existing files"
    (tmp_path / "a.txt").write_text("new caption")
    (space.root / "pictures").mkdir()
    (space.root / "pictures" / "a.txt").write_text("old caption")
    assert upload.fn([str(tmp_path / "a.txt")], "pictures", False).splitlines()[0] == (
        "0 files written to pictures, 1 skipped")
    assert (space.root / "pictures" / "a.txt").read_text() == "old caption"
    said = upload.fn([str(tmp_path / "a.txt")], "pictures", True)
    assert said == "1 files written to pictures (1 replaced), 0 skipped"
    assert (space.root / "pictures" / "a.txt").read_text() == "new caption"


def test_the_server_refuses_an_uploaded_file_larger_than_an_upload_may_write(tmp_path, monkeypatch):
    import httpx
    from conftest import serving

    monkeypatch.setattr(pictures_in, "MAX_UPLOAD_BYTES", 1000)
    with serving(Workspace.at(tmp_path / "ws")) as server:
        url = f"{server.url}gradio_api/upload"
        small = httpx.post(url, files={"files": ("a.txt", b"a" * 1000)}, timeout=30)
        big = httpx.post(url, files={"files": ("b.txt", b"b" * 1001)}, timeout=30)
    assert small.status_code == 200 and small.json()[0].endswith("a.txt")
    assert big.status_code == 413


def test_a_src_that_is_a_file_is_one_line_and_nothing_is_written(tmp_path):
    space = Workspace.at(tmp_path / "ws")
    (space.root / "pictures").write_text("not a folder")
    (tmp_path / "a.png").write_bytes(_picture())
    with pytest.raises(OnewordError) as refused:
        pictures_in.take_in(space, [str(tmp_path / "a.png")], "pictures")
    assert str(refused.value) == f"SRC {space.root / 'pictures'}: is a file, not a folder"
    assert (space.root / "pictures").read_text() == "not a folder"


@pytest.mark.parametrize("zip64", [False, True])
def test_a_zip_with_too_many_entries_is_refused_from_its_end_record_before_its_directory_is_read(tmp_path,
                                                                                                  monkeypatch, zip64):
    space = Workspace.at(tmp_path / "ws")
    path = _zip(tmp_path / "many.zip", [(f"{i}.txt", b"x") for i in range(12)])
    if zip64:  # the end record says "see the zip64 record", which holds the real count (as for 65,535 entries)
        data = path.read_bytes()
        end = data.rfind(b"PK\x05\x06")
        directory_size = int.from_bytes(data[end + 12:end + 16], "little")
        directory_at = int.from_bytes(data[end + 16:end + 20], "little")
        record = (b"PK\x06\x06" + (44).to_bytes(8, "little") + bytes(4) + bytes(8) + (12).to_bytes(8, "little") * 2
                  + directory_size.to_bytes(8, "little") + directory_at.to_bytes(8, "little"))
        locator = b"PK\x06\x07" + bytes(4) + end.to_bytes(8, "little") + (1).to_bytes(4, "little")
        path.write_bytes(data[:end] + record + locator + data[end:end + 8] + b"\xff\xff" * 2 + b"\xff" * 8
                         + data[end + 20:])
        with zipfile.ZipFile(path) as archive:
            assert len(archive.infolist()) == 12  # a zip64 end that Python reads
    monkeypatch.setattr(pictures_in, "MAX_ZIP_FILES", 10)

    def unread(*args, **kwargs):
        raise AssertionError("the zip's directory was read")

    monkeypatch.setattr(pictures_in.zipfile, "ZipFile", unread)
    said = pictures_in.take_in(space, [str(path)], "pictures")
    assert said.splitlines() == ["0 files written to pictures, 1 skipped",
                                 "- skipped many.zip: holds 12 files; at most 10 are taken from one zip"]
    monkeypatch.setattr(pictures_in, "MAX_ZIP_FILES", 100)
    monkeypatch.setattr(pictures_in, "MAX_ZIP_DIRECTORY_BYTES", 600)
    said = pictures_in.take_in(space, [str(path)], "pictures")
    names = 10 * len("0.txt") + 2 * len("10.txt")
    assert said.splitlines()[1] == (f"- skipped many.zip: its directory is {12 * 46 + names} bytes; at most 600 bytes "
                                    "is read")
