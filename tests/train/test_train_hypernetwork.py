"""Training a hypernetwork through the one training loop: A1111's log folder, defaults, resume, the best copy."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import run_in_process
from train_helpers import settings

from oneword.hypernetworks.create import CreateHypernetworkConfig, create_hypernetwork_file
from oneword.hypernetworks.formats import load_hypernetwork
from oneword.models.tiny import build_tiny
from oneword.train.loop import train


@pytest.fixture
def model():
    return build_tiny("sd1", seed=0)


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.name.startswith("settings-"))


def hn_settings(tmp_path, **changes):
    return settings(tmp_path, kind="hypernetwork", learn_rate="0.001", template="hypernetwork",
                    hypernetwork_dir=tmp_path / "hn", **changes)


def test_a_run_writes_a1111s_hypernetwork_log_folder_and_trains_only_the_modules(tmp_path, model):
    config = CreateHypernetworkConfig("zqx", activation="relu", hypernetwork_dir=tmp_path / "hn", seed=1)
    _, start = create_hypernetwork_file(model, config)
    unet_before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    finished = train(hn_settings(tmp_path, preview_every=6), model)
    folder = finished.log_folder
    assert _tree(folder) == [
        "checkpoints.csv", "hypernetwork_loss.csv", "hypernetworks", "hypernetworks/zqx-12.pt",
        "hypernetworks/zqx-12.pt.optim", "hypernetworks/zqx-6.pt", "images", "images/zqx-12.png", "images/zqx-6.png",
        "loss.png", "previews.png"]
    assert (folder / "hypernetwork_loss.csv").read_text().splitlines()[0] == "step,epoch,epoch_step,loss,learn_rate,val_loss"
    assert sorted(p.name for p in (tmp_path / "hn").iterdir()) == ["zqx.pt", "zqx.pt.optim"]
    trained = load_hypernetwork(tmp_path / "hn" / "zqx.pt")
    assert trained.settings == start.settings and trained.widths == start.widths
    assert trained.step == 12 and trained.sd_checkpoint == model.short_hash
    assert trained.name == "zqx" and load_hypernetwork(folder / "hypernetworks" / "zqx-6.pt").name == "zqx-6"  # A1111
    moved = [float((a - b).abs().max()) for a, b in zip(trained.parameters(), start.parameters())]
    assert min(moved) > 0  # every module of every width learned
    assert all(torch.equal(v, unet_before[k]) for k, v in model.unet.state_dict().items())  # the base stays frozen
    assert type(next(iter(model.unet.attn_processors.values()))).__name__ == "AttnProcessor2_0"  # removed after


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, model):
    whole = train(hn_settings(tmp_path / "a", max_steps=12), model)
    train(hn_settings(tmp_path / "b", max_steps=6), build_tiny("sd1", seed=0))
    resumed = train(hn_settings(tmp_path / "b", max_steps=12, resume=True), build_tiny("sd1", seed=0))
    assert resumed.step == 12
    a = load_hypernetwork(whole.log_folder / "hypernetworks" / "zqx-12.pt")
    b = load_hypernetwork(resumed.log_folder / "hypernetworks" / "zqx-12.pt")
    for x, y in zip(a.parameters(), b.parameters()):
        assert torch.allclose(x, y, atol=1e-6)


def test_train_hypernetwork_command_uses_a1111s_hypernetwork_defaults(tmp_path, monkeypatch, capsys):
    settings(tmp_path)  # writes tmp_path/data
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in_process(monkeypatch, capsys, "train-hypernetwork", "zqx", "--data", "data", "--model",
                                    "tiny-sd1", "--max-steps", "4", "--save-every", "2", "--preview-every", "0")
    assert code == 0, err
    assert "trained 4 steps" in out and (tmp_path / "hypernetworks" / "zqx.pt").is_file()
    saved = json.loads(next((tmp_path / "textual_inversion").rglob("settings-*.json")).read_text())
    assert (saved["kind"], saved["learn_rate"], saved["template"]) == ("hypernetwork", "0.00001", "hypernetwork")
    code, out, err = run_in_process(monkeypatch, capsys, "train-hypernetwork", "zqx", "--data", "data", "--model",
                                    "tiny-sd1", "--max-steps", "4")
    assert code == 1 and "hypernetworks/zqx.pt has been trained for 4 steps already: pass --resume" in err


@pytest.mark.parametrize("kind", ["sd2-v", "sdxl"])
def test_other_model_kinds_train_and_draw_finite_images(tmp_path, kind):
    from oneword.generate.config import GenerateConfig
    from oneword.generate.txt2img import generate_latents
    from oneword.hypernetworks.library import HypernetworkLibrary

    model = build_tiny(kind, seed=0)
    finished = train(hn_settings(tmp_path, model=f"tiny-{kind}", max_steps=4, save_every=2, batch_size=1), model)
    assert finished.reason == "done" and all(r.val_loss == r.val_loss for r in finished.records)  # no NaN
    library = HypernetworkLibrary.scan(tmp_path / "hn")
    config = GenerateConfig(prompt="a red ball <hypernet:zqx:1>", seed=1, steps=2, sampler="euler")
    latents = generate_latents(model, config, None, library)
    assert torch.isfinite(latents).all()
