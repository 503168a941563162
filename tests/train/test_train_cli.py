"""`oneword train` through the real entry point: settings from a TOML file, and bad input in one clear line."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import run_in_process
from diffusers_parity import assert_same_as_diffusers
from train_helpers import settings, write_images

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.models.tiny import build_tiny
from oneword.train.loop import train


def _base_args(tmp_path, *extra: str) -> list[str]:
    return ["train", "zqx", "--model", "tiny-sd1", "--data", str(tmp_path / "data"), "--log-dir", str(tmp_path / "log"),
            "--embeddings-dir", str(tmp_path / "emb"), *extra]


def test_settings_come_from_the_toml_file_and_options_override_them(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    config = tmp_path / "run.toml"
    config.write_text('learn-rate = "0.01:2, 0.002"\nmax_steps = 3\nbatch_size = 2\nsave_every = 0\n'
                      'preview_every = 0\ntemplate = "subject"\nseed = 7\n', encoding="utf-8")
    code, out, err = run_in_process(monkeypatch, capsys, *_base_args(tmp_path, "--config", str(config), "--seed", "9"))
    assert code == 0, err
    assert out.splitlines()[-1].startswith("log folder: ")
    folder = tmp_path / "log"
    saved = json.loads(next(folder.rglob("settings-*.json")).read_text())
    assert (saved["learn_rate"], saved["max_steps"], saved["template"], saved["seed"]) == ("0.01:2, 0.002", 3, "subject", 9)
    assert (tmp_path / "emb" / "zqx.pt").is_file()


def _nothing_written(tmp_path) -> bool:
    return not (tmp_path / "log").exists() and not (tmp_path / "emb").exists()


@pytest.mark.parametrize(
    ("prepare", "extra", "message"),
    [
        ("none", (), "--data {data}: no such folder"),
        ("empty", (), "--data {data}: no images in it"),
        ("garbage", (), "--data {data}: none of its 2 images can be read"),
        ("images", ("--template", "subjekt"), "--template 'subjekt': no such file, and not a shipped template"),
        ("images", ("--learn-rate", "0.005:100, 1e-3:abc"), "entry 2 '1e-3:abc': step 'abc' is not a whole number"),
        ("images", ("--width", "60"), "--width must be a positive multiple of 8, but is 60"),
        ("images", ("--latent-sampling", "sometimes"), "--latent-sampling must be one of once, deterministic, random"),
        ("images", ("--config", "{tmp}/missing.toml"), "--config {tmp}/missing.toml: no such file"),
        ("images", ("--stop", "never"), "--stop must be one of max, auto, not 'never'"),
        ("images", ("--score", "clip"), "--score clip needs --clip PATH"),
        ("images", ("--clip", "{tmp}/no-clip"), "--clip {tmp}/no-clip: no such folder"),
        ("images", ("--score", "judge:star"), "--score judge:star: the model tiny-sd1 is not a toy model"),
        ("images", ("--stop", "auto", "--stop-signal", "clip_image"), "--stop-signal clip_image: no scorer"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys, prepare, extra, message):
    data = tmp_path / "data"
    if prepare == "empty":
        data.mkdir()
    elif prepare == "garbage":
        data.mkdir()
        (data / "a.png").write_bytes(b"not a png")
        (data / "b.jpg").write_bytes(b"")
    elif prepare == "images":
        write_images(data)
    extra = tuple(e.format(tmp=tmp_path) for e in extra)
    code, out, err = run_in_process(monkeypatch, capsys, *_base_args(tmp_path, *extra))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message.format(data=data, tmp=tmp_path) in lines[0]
    assert _nothing_written(tmp_path)


def test_an_embedding_for_another_model_width_is_refused(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    save_embedding(Embedding(name="zqx", vectors={"*": torch.zeros(1, 768)}), tmp_path / "emb" / "zqx.pt")
    code, out, err = run_in_process(monkeypatch, capsys, *_base_args(tmp_path))
    assert code == 1
    assert "zqx.pt: trained for another model, it does not fit tiny-sd1: width 768 does not match" in err
    assert not (tmp_path / "log").exists()
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["zqx.pt"]


def test_a_checkpoint_loads_in_diffusers_with_the_same_prompt_embeddings(tmp_path):
    model = build_tiny("sd1", seed=0)
    finished = train(settings(tmp_path, max_steps=6, save_every=3), model)
    path = finished.log_folder / "embeddings" / "zqx-3.pt"
    assert_same_as_diffusers(model, "a photo of zqx, smiling", "zqx", path,
                             lambda pipe: pipe.load_textual_inversion(str(path), token="zqx"))
