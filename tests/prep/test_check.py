"""`oneword check DIR`: the report a user reads before training."""

from __future__ import annotations

import numpy as np
from cli_helpers import run_in_process
from corpus import face
from PIL import Image, ImageFilter

from oneword.prep.check import CheckConfig, check_dataset


def detailed(seed: int, size=(512, 512)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)).resize(
        size, Image.Resampling.NEAREST)


def write_dataset(folder):
    folder.mkdir()
    for i in range(4):
        detailed(i).save(folder / f"{i}.png")
    detailed(0).save(folder / "0-again.jpg", quality=90)  # a near-duplicate of 0.png
    two = Image.new("RGB", (700, 400), (120, 120, 120))
    for x in (60, 400):
        two.paste(face().resize((200, 250)), (x, 75))
    two.save(folder / "two-people.png")
    detailed(5).filter(ImageFilter.GaussianBlur(8)).save(folder / "soft.png")
    detailed(6, (128, 128)).save(folder / "small.png")
    detailed(7, (1536, 512)).save(folder / "panorama.png")
    (folder / "1.txt").write_text("")
    (folder / "2.txt").write_text("mychar standing, smiling")
    (folder / "3.txt").write_text("a girl standing")


def test_the_report_names_each_problem_and_its_file(tmp_path):
    write_dataset(tmp_path / "data")
    report = check_dataset(CheckConfig(tmp_path / "data", name="mychar"))
    found = {(f.level, f.path.name if f.path else None, f.message.split(" ")[0]) for f in report.findings}
    assert report.pictures == 9 and not report.errors
    assert ("warning", "0.png", "nearly") in found or ("warning", "0-again.jpg", "nearly") in found
    assert ("warning", "two-people.png", "2") in found
    assert ("warning", "soft.png", "looks") in found
    assert ("warning", "small.png", "small:") in found
    assert ("warning", "1.png", "1.txt") in found  # empty caption
    assert ("warning", "2.png", "its") in found  # the name in the caption
    assert ("warning", None, "only") in found  # 9 pictures: under 15
    assert any(f.path and f.path.name == "panorama.png" and "4 tiles" in f.message for f in report.findings)
    flagged = {f.path.name for f in report.warnings if f.path}
    assert not flagged & {"3.png"}  # a good picture with a good caption gets no warning


def test_check_exits_1_only_for_errors(tmp_path, monkeypatch, capsys):
    write_dataset(tmp_path / "data")
    code, out, err = run_in_process(monkeypatch, capsys, "check", str(tmp_path / "data"), "--name", "mychar")
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("9 usable pictures, 0 errors, ")
    (tmp_path / "data" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, out, err = run_in_process(monkeypatch, capsys, "check", str(tmp_path / "data"))
    assert code == 1
    assert "error: broken.png: cannot be used: " in out
    code, out, err = run_in_process(monkeypatch, capsys, "check", str(tmp_path / "nowhere"))
    assert code == 1 and err.strip() == f"error: DIR {tmp_path / 'nowhere'}: no such folder"


def test_check_judges_usable_pictures_by_preprocess_rules(tmp_path, monkeypatch, capsys):
    from oneword.prep.preprocess import PreprocessConfig, preprocess

    folder = tmp_path / "data"
    folder.mkdir()
    detailed(0).save(folder / "good.png")
    Image.new("RGB", (1, 1), (90, 90, 90)).save(folder / "dot.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (1, 20000, 3), dtype=np.uint8)).save(folder / "line.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    report = check_dataset(CheckConfig(folder, faces=False))
    assert report.pictures == 1
    assert [f.line() for f in report.errors] == [
        "error: zero.png: cannot be used: not a regular file (a character device)",
        "error: dot.png: cannot be used: too small: 1x1 px would be enlarged 512x to 512x512 (at most 4x)",
        "error: line.png: cannot be used: too small: 20000x1 px would be enlarged 512x to 512x512 (at most 4x)",
    ]
    result = preprocess(PreprocessConfig(folder, tmp_path / "out", workers=1))
    assert {p.name: reason for p, reason in result.skipped} == {
        f.path.name: f.message.removeprefix("cannot be used: ") for f in report.errors}
    code, out, err = run_in_process(monkeypatch, capsys, "check", str(folder), "--no-notes")
    assert code == 1 and out.splitlines()[-1].startswith("1 usable pictures, 3 errors, ")
