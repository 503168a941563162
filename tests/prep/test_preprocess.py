"""`oneword preprocess`: every awkward picture handled or skipped with a reason, SRC never touched, output trainable."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from corpus import BLUE, RED, face_at_the_right, halves, write_corpus
from PIL import Image

from oneword.errors import OnewordError
from oneword.prep.crop import focal_point
from oneword.prep.preprocess import PreprocessConfig, cut, preprocess


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


LIMIT = 100_000
"""Pixels over which the tests' pictures count as decompression bombs (the corpus's "bomb" has 160,000)."""


@pytest.fixture
def corpus(tmp_path):
    src = tmp_path / "src"
    return src, write_corpus(src)


def outputs_of(result, stem: str) -> list[Path]:
    return sorted(p for p in result.written if p.stem.split("-", 2)[2] == stem)


def test_every_kind_of_file_is_prepared_or_skipped_with_its_reason(corpus, tmp_path):
    src, expected = corpus
    before = digest(src)
    result = preprocess(PreprocessConfig(src, tmp_path / "dst", width=64, split=True, workers=1, max_pixels=LIMIT))
    assert digest(src) == before
    skipped = {path.name: reason for path, reason in result.skipped}
    assert set(skipped) == {name for name, what in expected.items() if what == "skip"}
    assert "empty" in skipped["zero.png"] and "not a picture" in skipped["notes.png"]
    assert "decoded" in skipped["truncated.png"] and "too small" in skipped["tiny.png"]
    assert "pixels" in skipped["bomb.png"]
    assert result.processed == len(expected) - len(skipped)
    for path in result.written:
        image = Image.open(path)
        assert image.size == (64, 64) and image.mode in ("RGB", "RGBA")
        assert path.with_suffix(".txt").read_text() == path.stem.split("-", 2)[2] + "\n"  # the name caption
    assert len(outputs_of(result, "wide")) == 6 and len(outputs_of(result, "tall")) == 6  # split into tiles
    names = sorted(p.name for p in result.written)
    assert all(re.fullmatch(r"\d{5}-\d+-[a-z]+\.png", n) for n in names)

    def pixel(stem, xy, tile=0):
        path = outputs_of(result, stem)[tile]
        return np.asarray(Image.open(path).convert("RGB"))[xy[1], xy[0]].astype(int)

    # upright (80x160, split in three overlapping tiles): the red half is now on top
    assert len(outputs_of(result, "rotated")) == 3
    assert abs(pixel("rotated", (32, 2)) - RED).max() < 40 and abs(pixel("rotated", (32, 60), 2) - BLUE).max() < 40
    assert Image.open(outputs_of(result, "palette")[0]).mode == "RGBA"  # transparency kept for --alpha-weight
    assert pixel("deep", (63, 32))[0] > 240 and pixel("deep", (0, 32))[0] < 15  # 16-bit range scaled, not clipped
    assert abs(pixel("cmyk", (32, 32)) - RED).max() < 40
    assert (pixel("gray", (32, 32)) == 128).all()
    assert abs(pixel("animated", (32, 32)) - RED).max() < 40  # the first frame (GIF and WebP share a stem)
    assert abs(pixel("tall", (5, 5)) - BLUE).max() < 10


def test_the_command_prints_one_line_per_skipped_file_and_a_summary(corpus, tmp_path, monkeypatch, capsys):
    from cli_helpers import run_in_process

    src, expected = corpus
    code, out, err = run_in_process(monkeypatch, capsys, "preprocess", str(src), str(tmp_path / "dst"), "--width",
                                    "64", "--workers", "1", "--max-pixels", str(LIMIT))
    assert code == 0, err
    for name, what in expected.items():
        assert (f"skipped {src / name}:" in out) == (what == "skip")
    n_skip = sum(what == "skip" for what in expected.values())
    assert f"{len(expected) - n_skip} pictures processed, {n_skip} skipped, " in out


def test_parallel_workers_write_the_same_files_as_one(corpus, tmp_path):
    src, _ = corpus
    one = preprocess(PreprocessConfig(src, tmp_path / "one", width=64, flip=True, workers=1, max_pixels=LIMIT))
    two = preprocess(PreprocessConfig(src, tmp_path / "two", width=64, flip=True, workers=2, max_pixels=LIMIT))
    assert [p.name for p in one.written] == [p.name for p in two.written]
    assert digest(tmp_path / "one") == digest(tmp_path / "two")


def test_flip_writes_a_mirrored_copy_with_the_same_caption(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    halves((64, 64), RED, BLUE).save(src / "a.png")
    (src / "a.txt").write_text("a red and blue square")
    result = preprocess(PreprocessConfig(src, tmp_path / "dst", width=64, flip=True, caption_action="copy",
                                         workers=1))
    first, mirrored = outputs_of(result, "a")
    assert np.array_equal(np.asarray(Image.open(first))[:, ::-1], np.asarray(Image.open(mirrored)))
    assert first.with_suffix(".txt").read_text() == mirrored.with_suffix(".txt").read_text() == \
        "a red and blue square\n"


@pytest.mark.parametrize(("action", "caption"), [
    ("ignore", "blue ball"), ("copy", "on grass"), ("prepend", "on grass, blue ball"),
    ("append", "blue ball, on grass"),
])
def test_existing_caption_actions(tmp_path, action, caption):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (64, 64), BLUE).save(src / "3-blue ball.png")
    (src / "3-blue ball.txt").write_text("on grass\n")
    result = preprocess(PreprocessConfig(src, tmp_path / "dst", width=64, caption_action=action, workers=1))
    assert result.written[0].with_suffix(".txt").read_text() == caption + "\n"


def test_focal_crop_keeps_the_face_that_a_center_crop_cuts(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    box = face_at_the_right(src / "portrait.png")
    image = Image.open(src / "portrait.png")
    # at 400x400 from the 800x400 picture: the centre crop spans x 200-600, the face is at x 610-770
    focus = focal_point(image, (400, 400))
    assert len(focus.faces) == 1
    fx, _, fw, _ = focus.faces[0]
    assert box[0] - 20 <= fx and fx + fw <= box[2] + 20
    focal = PreprocessConfig(src, tmp_path / "focal", width=400, crop="focal", focal_debug=True, workers=1)
    center = PreprocessConfig(src, tmp_path / "center", width=400, crop="center", workers=1)
    debug = []
    (focal_crop,) = cut(image.convert("RGB"), focal, debug=debug.append)
    (center_crop,) = cut(image.convert("RGB"), center)
    gray = np.asarray(image.convert("L")).astype(int)
    face_pixels = gray[box[1]:box[3], box[0]:box[2]]
    assert _contains(np.asarray(focal_crop.convert("L")).astype(int), face_pixels)
    assert not _contains(np.asarray(center_crop.convert("L")).astype(int), face_pixels)
    assert debug and debug[0].size == image.size
    result = preprocess(focal)
    assert (tmp_path / "focal" / "focal-debug" / "00000-portrait.png").is_file()
    assert [p.name for p in result.written] == ["00000-0-portrait.png"]


def _contains(crop: np.ndarray, patch: np.ndarray) -> bool:
    """Whether `patch` appears in `crop` (exactly, at any offset)."""
    ph, pw = patch.shape
    for y in range(crop.shape[0] - ph + 1):
        rows = np.where((crop[y, : crop.shape[1] - pw + 1, None] == patch[0, 0]).ravel())[0]
        for x in rows:
            if np.array_equal(crop[y : y + ph, x : x + pw], patch):
                return True
    return False


def test_src_is_never_a_destination_and_a_full_dst_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (64, 64), BLUE).save(src / "a.png")
    before = digest(src)
    for dst, message in ((src, "is SRC or inside it"), (src / "out", "is SRC or inside it")):
        with pytest.raises(OnewordError, match=message):
            preprocess(PreprocessConfig(src, dst, width=64))
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(OnewordError, match="not empty.*--overwrite"):
        preprocess(PreprocessConfig(src, full, width=64))
    assert digest(src) == before and not (src / "out").exists() and [p.name for p in full.iterdir()] == ["keep.txt"]
    preprocess(PreprocessConfig(src, full, width=64, overwrite=True, workers=1))
    assert (full / "keep.txt").read_text() == "mine" and (full / "00000-0-a.png").is_file()


@pytest.mark.parametrize(("changes", "message"), [
    ({"width": 100}, "--width must be a positive multiple of 8, but is 100"),
    ({"crop": "smart"}, "--crop must be one of"),
    ({"caption_action": "merge"}, "--caption-action must be one of"),
    ({"overlap": 1.0}, "--overlap"),
])
def test_bad_settings_are_one_line_and_write_nothing(tmp_path, changes, message):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (64, 64), BLUE).save(src / "a.png")
    with pytest.raises(OnewordError, match=message):
        preprocess(PreprocessConfig(src, tmp_path / "dst", **changes))
    assert not (tmp_path / "dst").exists()


def test_a_dst_that_is_a_link_loop_is_one_line(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (64, 64), BLUE).save(src / "a.png")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(OnewordError) as error:
        preprocess(PreprocessConfig(src, tmp_path / "loop", width=64))
    assert str(error.value) == f"DST {tmp_path / 'loop'} is a link loop (a link that leads back to itself)"


def test_bad_arguments_on_the_command_line(tmp_path, monkeypatch, capsys):
    from cli_helpers import run_in_process

    code, _, err = run_in_process(monkeypatch, capsys, "preprocess", str(tmp_path / "missing"), str(tmp_path / "d"))
    assert code == 1 and err.strip() == f"error: SRC {tmp_path / 'missing'}: no such folder"


def test_prepared_pictures_train_directly(tmp_path, tiny_sd1):
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train

    src = tmp_path / "src"
    write_corpus(src)
    dst = tmp_path / "prepared"
    preprocess(PreprocessConfig(src, dst, width=64, flip=True, workers=1))
    config = TrainConfig(name="zqx", data=dst, model="tiny-sd1", init_text="ball", max_steps=3, save_every=0,
                         preview_every=0, batch_size=2, log_dir=tmp_path / "log", embeddings_dir=tmp_path / "emb")
    finished = train(config, tiny_sd1)
    assert finished.embedding_path.is_file() and finished.step == 3


def _entries_that_are_no_pictures(src: Path) -> dict[str, str]:
    """Entries with a picture's name that cannot be read as one, and the reason each is skipped for."""
    import os

    (src / "loop.png").symlink_to(src / "loop.png")
    (src / "dangling.jpg").symlink_to(src / "gone.jpg")
    os.mkfifo(src / "fifo.png")
    (src / "x.png").mkdir()
    (src / "zero.png").symlink_to("/dev/zero")
    return {
        "dangling.jpg": f"a dangling link (its target {src / 'gone.jpg'} does not exist)",
        "fifo.png": "not a regular file (a FIFO)",
        "loop.png": "a link loop (the link leads back to itself)",
        "x.png": "not a regular file (a folder)",
        "zero.png": "not a regular file (a character device)",
    }


def test_entries_that_are_no_pictures_are_skipped_unopened_with_their_reason(tmp_path, monkeypatch, capsys):
    from bounded import never_opened
    from cli_helpers import run_in_process

    src = tmp_path / "src"
    src.mkdir()
    halves((64, 64), RED, BLUE).save(src / "good.png")
    expected = _entries_that_are_no_pictures(src)
    never_opened(monkeypatch, *expected)  # opening the FIFO would block, reading the device would never end
    result = preprocess(PreprocessConfig(src, tmp_path / "dst", width=64, workers=1))
    code, out, err = run_in_process(monkeypatch, capsys, "preprocess", str(src), str(tmp_path / "dst2"),
                                    "--width", "64", "--workers", "1")
    assert {path.name: reason for path, reason in result.skipped} == expected
    assert result.processed == 1 and [p.name for p in result.written] == ["00000-0-good.png"]
    assert code == 0, err
    for name, reason in expected.items():
        assert f"skipped {src / name}: {reason}" in out
    assert "1 pictures processed, 5 skipped, 1 written" in out


def test_every_picture_skipped_is_an_error_and_leaves_no_dst(tmp_path, monkeypatch, capsys):
    from cli_helpers import run_in_process

    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (1, 1)).save(src / "dot.png")
    (src / "zero.png").symlink_to("/dev/zero")
    dst = tmp_path / "dst"
    with pytest.raises(OnewordError) as error:
        preprocess(PreprocessConfig(src, dst, width=64, workers=1))
    assert str(error.value) == (f"SRC {src}: none of its 2 pictures can be used, every one was skipped (the first, "
                                "zero.png: not a regular file (a character device))")
    assert not dst.exists()
    code, out, err = run_in_process(monkeypatch, capsys, "preprocess", str(src), str(dst), "--width", "64")
    assert code == 1 and err.splitlines() == [f"error: {error.value}"]
    assert f"skipped {src / 'dot.png'}: too small: 1x1 px would be enlarged 64x to 64x64 (at most 4x)" in out


def test_a_source_with_a_name_as_long_as_a_name_can_be_is_prepared_under_a_name_that_fits(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    stem = "é" * 100 + "a" * 37  # 237 bytes: with .png the longest name an upload writes
    halves((64, 64), RED, BLUE).save(src / f"{stem}.png")
    (src / f"{stem}.txt").write_text("a red and blue square")
    result = preprocess(PreprocessConfig(src, tmp_path / "dst", width=64, flip=True, caption_action="copy",
                                         workers=1))
    names = sorted(p.name for p in (tmp_path / "dst").iterdir())
    assert [len(n.encode()) for n in names] == [241, 241, 241, 241]
    assert names == [f"00000-{sub}-{'é' * 100}{'a' * 29}.{suffix}" for sub in (0, 1) for suffix in ("png", "txt")]
    assert [p.name for p in result.written] == names[::2]
    assert (tmp_path / "dst" / names[1]).read_text() == "a red and blue square\n"
