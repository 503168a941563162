"""The path rule: `oneword.outputs.path_inside` turns a name found in a file or sent by a browser into a path directly
inside its folder, and `atomic_write(..., overwrite=False)` writes it; nothing lands outside the folder, nothing is
written through a link, and no existing file is replaced unless asked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oneword.errors import OnewordError
from oneword.files import atomic_write
from oneword.outputs import path_inside


@pytest.fixture
def places(tmp_path):
    """An output folder `out` with a file, a link to a file outside, a dangling link and a link to a folder outside,
    and the folder beside it that nothing may reach."""
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    (out / "old.png").write_bytes(b"old")
    (out / "link.png").symlink_to(outside / "secret.png")
    (out / "dangling.png").symlink_to(outside / "new.png")
    (out / "folder").symlink_to(outside)
    (out / "sub").mkdir()
    return out, outside


def _files(folder: Path) -> dict[str, bytes | str]:
    """Every entry below `folder`: a file's bytes, a link's target."""
    return {p.relative_to(folder).as_posix(): os.readlink(p) if p.is_symlink() else p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_symlink() or p.is_file()}


def _write(path: Path, overwrite: bool = False) -> None:
    atomic_write(path, lambda f: f.write(b"written"), overwrite=overwrite)


@pytest.mark.parametrize(("name", "problem"), [
    ("..", "picture: the name '..' is not a file's name"),
    (".", "picture: the name '.' is not a file's name"),
    ("", "picture: the name is empty"),
    ("../outside/secret.png", "picture: the name '../outside/secret.png' is a path, not a file's name"),
    ("..\\outside\\a.png", "picture: the name '..\\\\outside\\\\a.png' is a path, not a file's name"),
    ("/etc/passwd", "picture: the name '/etc/passwd' is a path, not a file's name"),
    ("C:evil.png", "picture: the name 'C:evil.png' is a path, not a file's name"),
    ("sub/a.png", "picture: the name 'sub/a.png' is a path, not a file's name"),
    ("a\nb.png", "picture: the name 'a\\nb.png' holds a control character"),
    (".hidden.png", "picture: the name '.hidden.png' starts with '.' (a hidden file)"),
    ("nul.png", "picture: the name 'nul.png' is a device's name on Windows"),
    ("COM1", "picture: the name 'COM1' is a device's name on Windows"),
    ("lpt9.txt", "picture: the name 'lpt9.txt' is a device's name on Windows"),
    ("é" * 128 + ".png", f"picture: the name {'é' * 40!r}... is 260 bytes long (a file's name holds at most 241: "
                         "255 less the 14 its temporary file adds)"),
    ("a" * 238 + ".png", f"picture: the name {'a' * 40!r}... is 242 bytes long (a file's name holds at most 241: "
                         "255 less the 14 its temporary file adds)"),
])
def test_a_name_that_is_not_a_plain_file_name_is_refused(places, name, problem):
    out, outside = places
    before = _files(out.parent)
    with pytest.raises(OnewordError) as refused:
        path_inside(out, name, what="picture", overwrite=True)
    assert str(refused.value) == problem
    assert _files(out.parent) == before


@pytest.mark.parametrize("name", ["link.png", "dangling.png", "folder"])
def test_a_link_in_the_folder_is_refused_even_with_overwrite(places, name):
    out, outside = places
    before = _files(out.parent)
    for overwrite in (False, True):
        with pytest.raises(OnewordError, match=f"^picture: {out / name} is a link; nothing is written through it$"):
            path_inside(out, name, what="picture", overwrite=overwrite)
    assert _files(out.parent) == before and not (outside / "new.png").exists()


def test_an_existing_file_is_kept_unless_overwrite_is_asked(places):
    out, _ = places
    with pytest.raises(OnewordError, match=f"^picture: {out / 'old.png'} already exists \\(not replaced\\)$"):
        path_inside(out, "old.png", what="picture")
    with pytest.raises(OnewordError, match=f"^picture: {out / 'sub'} is a folder$"):
        path_inside(out, "sub", what="picture", overwrite=True)
    path = path_inside(out, "old.png", what="picture", overwrite=True)
    assert path == out / "old.png"
    with pytest.raises(FileExistsError):
        _write(path)
    assert path.read_bytes() == b"old"
    _write(path, overwrite=True)
    assert path.read_bytes() == b"written"


def test_a_plain_new_name_is_written_inside_the_folder_and_only_there(places):
    out, outside = places
    before = _files(outside)
    for name in ("new.png", "caption with spaces.txt", "ünïcode-名前.png", "a" * 237 + ".png", "nullable.png"):
        path = path_inside(out, name, what="picture")
        assert path == out.resolve() / name
        _write(path)
        assert path.read_bytes() == b"written"
    assert _files(outside) == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary left behind


def test_a_file_or_link_that_appears_after_the_check_is_not_replaced_nor_written_through(places):
    out, outside = places
    path = path_inside(out, "late.png", what="picture")
    path.write_bytes(b"came first")
    with pytest.raises(FileExistsError):
        _write(path)
    assert path.read_bytes() == b"came first"
    path = path_inside(out, "raced.png", what="picture")
    path.symlink_to(outside / "raced.png")  # a dangling link planted between the check and the write
    with pytest.raises(FileExistsError):
        _write(path)
    assert not (outside / "raced.png").exists() and path.is_symlink()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_a_folder_given_through_a_link_is_resolved_and_its_files_stay_inside_it(places):
    out, outside = places
    path = path_inside(out / "folder", "inside.png", what="picture")
    assert path == outside.resolve() / "inside.png"  # the folder the user gave, followed once, not a name's link
    with pytest.raises(OnewordError, match="is a path"):
        path_inside(out / "folder", "../old.png", what="picture", overwrite=True)
