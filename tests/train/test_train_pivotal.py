"""Training a word's vectors and a LoRA together (`--kind pivotal`): one kohya LoRA file with the word bundled as
A1111 reads it, `<lora:NAME:1> ... NAME` drawing with both, exact resume, the vectors held still after --ti-frac,
and the options refused for other kinds."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from cli_helpers import run_in_process
from safetensors import safe_open
from train_helpers import settings

from oneword import kinds
from oneword.generate.config import GenerateConfig
from oneword.generate.txt2img import generate
from oneword.lora.library import LoraLibrary
from oneword.lora.read import read_lora
from oneword.models.tiny import build_tiny
from oneword.safeload import load_pickle
from oneword.train.config import TrainConfig
from oneword.train.loop import train


def pivotal_settings(tmp_path, **changes) -> TrainConfig:
    return settings(tmp_path, **{"kind": "pivotal", "lora_dir": tmp_path / "lora", "learn_rate": "0.01",
                                 "text_encoder_lr": "0.005", "vectors_lr": "0.05", **changes})


def _file(path):
    with safe_open(str(path), framework="pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}, f.metadata()  # noqa: SIM118


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.name.startswith("settings-"))


def _pixels(model, prompt, lora_dir):
    config = GenerateConfig(prompt=prompt, seed=1, steps=2, width=64, height=64)
    return torch.tensor(list(generate(model, config, {}, LoraLibrary.scan(lora_dir))[0].image.getdata()))


def test_a_pivotal_run_through_the_cli_writes_one_lora_file_with_the_word_bundled(tmp_path, monkeypatch, capsys):
    settings(tmp_path)  # writes tmp_path/data
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in_process(monkeypatch, capsys, "train", "zqx", "--kind", "pivotal", "--data", "data",
                                    "--model", "tiny-sd1", "--init-text", "ball", "--vectors", "2", "--max-steps", "4",
                                    "--save-every", "2", "--preview-every", "2", "--csv-every", "2",
                                    "--preview-steps", "2", "--validate-every", "2", "--validation-size", "2",
                                    "--device", "cpu")
    assert code == 0, err
    assert "trained 4 steps: saved lora/zqx.safetensors" in out
    (root,) = (tmp_path / "textual_inversion").glob("*/zqx")
    assert _tree(root) == [
        "checkpoints.csv", "images", "images/zqx-2.png", "images/zqx-4.png", "lora", "lora/zqx-2.safetensors",
        "lora/zqx-4.safetensors", "lora/zqx-4.safetensors.optim", "loss.png", "pivotal_loss.csv", "previews.png"]
    rows = (root / "pivotal_loss.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,epoch_step,loss,learn_rate,learn_rate_text_encoder,learn_rate_vectors,val_loss"
    assert rows[1].split(",")[4:7] == rows[2].split(",")[4:7] == ["0.0001", "5e-05", "0.01"]  # the LoRA kind's rates
    saved = json.loads(next(root.glob("settings-*.json")).read_text())
    lora_defaults = kinds.get("lora").defaults
    assert {k: saved[k] for k in lora_defaults} == dict(lora_defaults)
    assert (saved["vectors_lr"], saved["ti_frac"]) == ("0.01", 1.0)
    assert sorted(p.name for p in (tmp_path / "lora").iterdir()) == ["zqx.safetensors", "zqx.safetensors.optim"]
    tensors, metadata = _file(tmp_path / "lora" / "zqx.safetensors")
    assert tensors["bundle_emb.zqx.string_to_param.*"].shape == (2, 64)  # A1111's key: [vectors, width]
    assert tensors["bundle_emb.zqx.string_to_param.*"].dtype == torch.float32
    assert [k for k in tensors if k.startswith("bundle_emb.")] == ["bundle_emb.zqx.string_to_param.*"]
    assert any(k.startswith("lora_te_") for k in tensors) and any(k.startswith("lora_unet_") for k in tensors)
    assert metadata["modelspec.trigger_phrase"] == "zqx" and metadata["ss_steps"] == "4"
    checkpoint, _ = _file(root / "lora" / "zqx-2.safetensors")
    assert "bundle_emb.zqx.string_to_param.*" in checkpoint  # the checkpoint's word is the run's word too


def test_the_tag_brings_the_word_and_the_lora_and_without_it_the_word_is_unknown(tmp_path):
    finished = train(pivotal_settings(tmp_path, max_steps=4, save_every=0, validate_every=0), build_tiny("sd1"))
    model = build_tiny("sd1", seed=0)
    lora = read_lora(finished.embedding_path)
    assert list(lora.embeddings) == ["zqx"] and lora.embeddings["zqx"].n_vectors == 1
    lora_dir = finished.embedding_path.parent
    plain = _pixels(model, "a photo of zqx", lora_dir)  # no tag: zqx is only text
    both = _pixels(model, "<lora:zqx:1> a photo of zqx", lora_dir)
    # the tag's LoRA with the word's vectors, against the LoRA alone (the word as text) and the vectors alone
    layers_only = _pixels(model, "<lora:zqx:1> a photo of zqx", _lora_without_words(lora, tmp_path / "plain"))
    vectors_only = _pixels(model, "<lora:zqx:0> a photo of zqx", lora_dir)
    assert not torch.equal(both, plain) and not torch.equal(both, layers_only) and not torch.equal(both, vectors_only)
    assert not torch.equal(vectors_only, plain)  # weight 0: no layer acts, the words still come with the tag


def _lora_without_words(lora, folder):
    import dataclasses

    from oneword.lora.write import save_lora

    folder.mkdir()
    save_lora(dataclasses.replace(lora, embeddings={}), folder / "zqx.safetensors", {})
    return folder


def test_the_vectors_stop_after_ti_frac_and_the_lora_goes_on(tmp_path):
    config = pivotal_settings(tmp_path, max_steps=6, save_every=1, validate_every=0, ti_frac=0.5)
    finished = train(config, build_tiny("sd1", seed=0))
    files = [read_lora(finished.log_folder / "lora" / f"zqx-{step}.safetensors") for step in range(1, 7)]
    vectors = [f.embeddings["zqx"].vectors["*"] for f in files]
    ups = [next(iter(f.layers.values())).up for f in files]
    assert not torch.equal(vectors[1], vectors[2])  # trained through step 3
    assert all(torch.equal(vectors[2], v) for v in vectors[3:])  # then held still
    assert all(not torch.equal(a, b) for a, b in itertools.pairwise(ups[2:]))  # while the LoRA goes on


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    changes = {"save_every": 4, "vectors_lr": "0.05:3", "ti_frac": 1.0}  # the vectors' end stays where it is
    whole = train(pivotal_settings(tmp_path / "a", max_steps=8, **changes), build_tiny("sd1", seed=0))
    train(pivotal_settings(tmp_path / "b", max_steps=4, **changes), build_tiny("sd1", seed=0))
    resumed = train(pivotal_settings(tmp_path / "b", max_steps=8, resume=True, **changes), build_tiny("sd1", seed=0))
    assert (resumed.step, resumed.log_folder.name) == (8, "zqx")
    a, b = (_file(run.log_folder / "lora" / "zqx-8.safetensors")[0] for run in (whole, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    states = [load_pickle(run.log_folder / "lora" / "zqx-8.safetensors.optim") for run in (whole, resumed)]
    moments = [[s["exp_avg"] for s in state["optimizer_state_dict"]["state"].values()] for state in states]
    assert len(moments[0]) == len(moments[1]) and all(torch.equal(x, y) for x, y in zip(*moments, strict=True))


def test_pivotal_options_are_refused_for_another_kind_and_checked_for_pivotal(tmp_path):
    assert [p for p in settings(tmp_path, kind="lora", ti_frac=0.3, vectors_lr="0.01").problems()] == [
        "--vectors-lr is for --kind pivotal", "--ti-frac is for --kind pivotal"]
    assert pivotal_settings(tmp_path, ti_frac=0.0, vectors_lr="x", vectors=0, rank=0).problems() == [
        "--rank must be at least 1, but is 0", "--vectors must be at least 1, but is 0",
        "--vectors-lr 'x': entry 1 'x': 'x' is not a number", "--ti-frac must be above 0 and at most 1, but is 0.0"]


def test_a_lora_without_one_bundled_word_is_not_continued(tmp_path):
    from oneword.errors import OnewordError
    from oneword.lora.write import save_lora

    model = build_tiny("sd1", seed=0)
    lora = kinds.get("lora").create(pivotal_settings(tmp_path, kind="lora", vectors_lr=None), model, "zqx")
    (tmp_path / "lora").mkdir()
    save_lora(lora, tmp_path / "lora" / "zqx.safetensors", {})
    with pytest.raises(OnewordError, match="a pivotal run continues a LoRA with one bundled word, this one has none"):
        train(pivotal_settings(tmp_path, max_steps=2), model)
