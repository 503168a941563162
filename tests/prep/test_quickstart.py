"""The README's Quickstart for a dataset, followed as a new user does on the toy model's example pictures: `check`
and `preprocess` size the pictures for `--model`, say which option to give when pictures are too small for the
default size, and keep the captions the pictures come with."""

from __future__ import annotations

import pytest
from cli_helpers import run_in_process
from PIL import Image

from oneword.prep.preprocess import PreprocessConfig
from oneword.toy.concepts import get_concept, write_concept_examples


@pytest.fixture
def pictures(tmp_path):
    """The toy model's example pictures of the star: 64 px, each with a `.txt` caption."""
    folder = tmp_path / "pictures"
    write_concept_examples(get_concept("star"), folder, 5)
    return folder


def test_check_and_preprocess_size_the_pictures_for_the_model(pictures, tmp_path, monkeypatch, capsys):
    code, out, err = run_in_process(monkeypatch, capsys, "check", str(pictures), "--model", "toy", "--no-notes")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "5 usable pictures, 0 errors, 1 warnings"  # only: few pictures
    dst = tmp_path / "dataset"
    code, out, err = run_in_process(monkeypatch, capsys, "preprocess", str(pictures), str(dst), "--model", "toy",
                                    "--workers", "1")
    assert (code, err) == (0, "")
    written = sorted(dst.glob("*.png"))
    assert len(written) == 5 and {Image.open(p).size for p in written} == {(64, 64)}


def test_pictures_too_small_for_the_default_size_name_the_options_that_fit_them(pictures, tmp_path, monkeypatch,
                                                                             capsys):
    code, out, err = run_in_process(monkeypatch, capsys, "check", str(pictures), "--no-notes")
    assert code == 1
    assert out.splitlines()[-2] == (
        "warning: 5 pictures are too small for 512x512; for a model that trains on smaller pictures give --model "
        "(its size is used: --model toy makes 64x64) or --width")
    code, out, err = run_in_process(monkeypatch, capsys, "preprocess", str(pictures), str(tmp_path / "dataset"),
                                    "--workers", "1")
    assert code == 1 and len(err.splitlines()) == 1
    assert err.rstrip().endswith(
        "for a model that trains on smaller pictures give --model (its size is used: --model toy makes 64x64) or "
        "--width")
    assert not (tmp_path / "dataset").exists()


def test_preprocess_keeps_the_captions_the_pictures_come_with(pictures, tmp_path, monkeypatch, capsys):
    assert PreprocessConfig(pictures, tmp_path / "x").caption_action == "copy"
    dst = tmp_path / "dataset"
    code, out, err = run_in_process(monkeypatch, capsys, "preprocess", str(pictures), str(dst), "--width", "64",
                                    "--workers", "1")
    assert (code, err) == (0, "")
    sources = sorted(pictures.glob("*.txt"))
    captions = sorted(dst.glob("*.txt"))
    assert len(captions) == len(sources) == 5
    for source, caption in zip(sources, captions):
        assert caption.read_text(encoding="utf-8") == source.read_text(encoding="utf-8").strip() + "\n"
