"""The bundled toy model: loads like any diffusers folder, draws what it is asked, and its judge reads renders."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_in_process

from oneword.models.load import load_base
from oneword.toy.bundle import bundled_toy_path, load_toy
from oneword.toy.judge import judge_accuracy
from oneword.toy.report import ReportConfig, toy_report


@pytest.fixture(scope="module")
def toy():
    return load_toy("toy")


def test_the_bundle_is_a_diffusers_folder_of_at_most_30_mb():
    folder = bundled_toy_path()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 30 * 2**20
    assert (folder / "model_index.json").is_file() and (folder / "judge.safetensors").is_file()
    model = load_base(folder)
    assert model.kind == "sd1" and model.vae.config.sample_size == 64


def test_the_judge_reads_fresh_renders(toy):
    _, judge = toy
    accuracy = judge_accuracy(judge, n=300, seed=4242)
    assert min(accuracy.values()) >= 0.99, accuracy


def test_the_report_runs_on_the_bundled_model(toy, tmp_path):
    model, judge = toy
    report = toy_report(model, judge, ReportConfig(samples=6, tokens=40, meaning_tokens=2, meaning_samples=2), tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert set(saved) >= {"words", "concept_baselines", "judge_accuracy", "word_visibility", "word_meaning"}
    assert saved["word_visibility"]["unseen_tokens"] == 40 and saved["word_visibility"]["caption_median"] > 0
    assert (saved["word_meaning"]["tokens"], saved["word_meaning"]["samples_per_token"]) == (2, 2)
    for factor in ("shape", "colour"):
        m = saved["word_meaning"][factor]
        assert m["points"] == pytest.approx(100 * (m["with"] - m["without"]))
    assert set(saved["words"]) == {"circle", "square", "triangle", "red", "green", "blue", "yellow", "purple"}
    assert set(saved["concept_baselines"]) == {"star", "cross", "crescent", "outline"}
    assert all(0.0 <= v <= 1.0 for v in [*saved["words"].values(), *saved["concept_baselines"].values()])
    assert saved == report and (tmp_path / "grid.png").is_file()
    # a reduced sample count cannot prove the 90% target, but a model that ignores its prompt fails this
    assert sum(saved["words"].values()) / len(saved["words"]) >= 0.6


def test_generate_draws_with_the_toy_model_by_default(tmp_path, monkeypatch, capsys):
    code, out, err = run_in_process(monkeypatch, capsys, "generate", "--prompt", "a red circle", "--seed", "1",
                                    "--steps", "4", "--out", str(tmp_path))
    assert code == 0, err
    (path,) = tmp_path.glob("*.png")
    assert out.strip() == str(path)
    from PIL import Image

    text = Image.open(path).text["parameters"]
    assert "Model: toy" in text and "Size: 64x64" in text
