"""A training run end to end on the tiny model: the log folder users know, honest step numbers, resume, signals."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from PIL import Image
from train_helpers import settings

from oneword.embeddings.formats import load_embedding_file
from oneword.embeddings.png import read_png_embedding
from oneword.models.tiny import build_tiny
from oneword.safeload import load_pickle
from oneword.train import events
from oneword.train.loop import setup, train


@pytest.fixture
def model():
    """A fresh tiny SD 1.x model (training sets its flags, so it is not shared)."""
    return build_tiny("sd1", seed=0)


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_log_folder_tree_csv_and_settings_are_as_a1111_users_know_them(tmp_path, model):
    finished = train(settings(tmp_path, preview_every=6), model)
    folder = finished.log_folder
    assert folder.parent.parent == tmp_path / "log" and folder.name == "zqx"
    tree = _tree(folder)
    settings_files = [p for p in tree if p.startswith("settings-")]
    assert len(settings_files) == 1 and settings_files[0].endswith(".json")
    assert [p for p in tree if not p.startswith("settings-")] == [
        "checkpoints.csv", "embeddings", "embeddings/zqx-12.pt", "embeddings/zqx-12.pt.optim", "embeddings/zqx-6.pt",
        "image_embeddings", "image_embeddings/zqx-12.png", "image_embeddings/zqx-6.png",
        "images", "images/zqx-12.png", "images/zqx-6.png", "loss.png", "previews.png",
        "textual_inversion_loss.csv",
    ]
    lines = (folder / "textual_inversion_loss.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,epoch_step,loss,learn_rate,val_loss"  # A1111's columns, then oneword's
    # 4 images, batch 2: two steps per epoch; epoch = (step-1) // 2, epoch_step = (step-1) % 2
    assert [row.split(",")[:3] for row in lines[1:]] == [
        ["3", "1", "0"], ["6", "2", "1"], ["9", "4", "0"], ["12", "5", "1"]]
    assert all(len(row.split(",")[3].split(".")[1]) == 7 and row.split(",")[4] == "0.005" for row in lines[1:])
    saved = json.loads((folder / settings_files[0]).read_text())
    assert saved["learn_rate"] == "0.005" and saved["batch_size"] == 2 and saved["template"] == "subject_filewords"
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["zqx.pt", "zqx.pt.optim"]
    assert (finished.reason, finished.step) == ("done", 12)


def test_previews_carry_parameters_and_the_current_vectors(tmp_path, model):
    finished = train(settings(tmp_path, preview_every=6), model)
    folder = finished.log_folder
    for step in (6, 12):
        checkpoint = load_embedding_file(folder / f"embeddings/zqx-{step}.pt")
        inside = read_png_embedding(folder / f"image_embeddings/zqx-{step}.png")
        assert inside.step == step == checkpoint.step
        assert torch.equal(inside.vectors["*"], checkpoint.vectors["*"])
        with Image.open(folder / f"images/zqx-{step}.png") as preview:
            text = preview.text["parameters"]
        assert text.startswith("a ") and "zqx" in text.splitlines()[0]
        assert "Seed: 0" in text and f"Embedding step: {step}" in text
    first = Image.open(folder / "images/zqx-6.png").text["parameters"].splitlines()[0]
    assert first == Image.open(folder / "images/zqx-12.png").text["parameters"].splitlines()[0]


def test_the_file_for_step_n_holds_the_vectors_after_n_steps(tmp_path, model):
    long = train(settings(tmp_path / "a", max_steps=12, save_every=6), model)
    short = train(settings(tmp_path / "b", max_steps=6, save_every=0), build_tiny("sd1", seed=0))
    at_6 = load_embedding_file(long.log_folder / "embeddings/zqx-6.pt")
    after_6 = load_embedding_file(short.embedding_path)
    assert at_6.step == after_6.step == 6
    assert torch.equal(at_6.vectors["*"], after_6.vectors["*"])
    start = load_embedding_file(long.embedding_path)
    assert not torch.equal(start.vectors["*"], at_6.vectors["*"])


def test_the_schedule_ending_ends_training(tmp_path, model):
    finished = train(settings(tmp_path, learn_rate="0.01:4, 0.001:7", max_steps=100, save_every=0), model)
    assert (finished.reason, finished.step) == ("schedule", 7)
    rows = (finished.log_folder / "textual_inversion_loss.csv").read_text().splitlines()[1:]
    assert [(r.split(",")[0], r.split(",")[4]) for r in rows] == [("3", "0.01"), ("6", "0.001"), ("7", "0.001")]


def _stop_at(step: int, signum: int):
    def listener(event):
        if isinstance(event, events.Progress) and event.step >= step:
            os.kill(os.getpid(), signum)

    return listener


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_and_resume_reaches_the_uninterrupted_vectors(tmp_path, model, signum, monkeypatch):
    monkeypatch.setattr("oneword.train.loop.PROGRESS_EVERY", 1)
    whole = train(settings(tmp_path / "whole", latent_sampling="random"), model)
    config = settings(tmp_path / "cut", latent_sampling="random")
    stopped = train(config, build_tiny("sd1", seed=0), _stop_at(5, signum))
    assert (stopped.reason, stopped.step) == ("interrupted", 5)
    saved = load_embedding_file(stopped.embedding_path)
    assert saved.step == 5 and stopped.embedding_path.with_name("zqx.pt.optim").is_file()
    assert "--resume" in stopped.message
    resumed = train(settings(tmp_path / "cut", latent_sampling="random", resume=True), build_tiny("sd1", seed=0))
    assert (resumed.reason, resumed.step) == ("done", 12)
    # NAME.pt ends as the best checkpoint (by validation loss); the last vectors are the log folder's step 12
    a = load_embedding_file(whole.log_folder / "embeddings" / "zqx-12.pt").vectors["*"]
    b = load_embedding_file(resumed.log_folder / "embeddings" / "zqx-12.pt").vectors["*"]
    assert torch.equal(a, b)
    assert whole.best_step == resumed.best_step
    rows = (resumed.log_folder / "textual_inversion_loss.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["3", "5", "6", "9", "12"]


def test_resume_without_optimizer_state_starts_adam_afresh_and_says_so(tmp_path, model):
    import shutil

    first = train(settings(tmp_path, max_steps=4), model)
    first.embedding_path.with_name("zqx.pt.optim").unlink()
    shutil.rmtree(first.log_folder)  # without the run's log folder, --resume continues NAME.pt itself
    seen = []
    train(settings(tmp_path, max_steps=6, resume=True), build_tiny("sd1", seed=0), seen.append)
    notes = next(e for e in seen if isinstance(e, events.Started)).notes
    assert any("no optimizer state" in n for n in notes)


def test_an_existing_trained_embedding_needs_resume(tmp_path, model):
    train(settings(tmp_path, max_steps=2), model)
    with pytest.raises(Exception, match="has been trained for 2 steps already: pass --resume"):
        setup(settings(tmp_path, max_steps=4), build_tiny("sd1", seed=0))


def test_a_created_embedding_at_step_0_is_trained_from_its_vectors(tmp_path, model):
    from oneword.embeddings.create import create_embedding
    from oneword.embeddings.formats import save_embedding

    created = create_embedding(model, "zqx", "red ball", 2)
    save_embedding(created, tmp_path / "emb" / "zqx.pt")
    run = setup(settings(tmp_path, init_text="ignored"), model)
    assert torch.equal(run.trainable.parameters()[0].detach(), created.vectors["*"])


def test_nan_losses_leave_the_vectors_alone_and_stop_after_three_in_a_row(tmp_path, model, monkeypatch):
    import oneword.train.loop as loop

    real = loop.training_loss
    calls = {"n": 0}

    def flaky(run, indices, gen, rng):
        calls["n"] += 1
        loss = real(run, indices, gen, rng)
        return loss * float("nan") if calls["n"] == 3 or calls["n"] >= 6 else loss

    monkeypatch.setattr(loop, "training_loss", flaky)
    seen = []
    finished = train(settings(tmp_path, save_every=0), model, seen.append)
    skipped = [e for e in seen if isinstance(e, events.Skipped)]
    assert [(e.step, e.in_a_row) for e in skipped] == [(3, 1), (5, 1), (5, 2), (5, 3)]
    assert (finished.reason, finished.step) == ("diverged", 4)
    assert "lower --learn-rate" in finished.message
    saved = load_embedding_file(finished.embedding_path)
    assert saved.step == 4 and torch.isfinite(saved.vectors["*"]).all()


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    from oneword.files import atomic_write

    target = tmp_path / "x.pt"
    target.write_bytes(b"old")

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]


def test_a_runs_checkpoints_and_pictures_carry_their_own_word_and_the_model(tmp_path, model):
    # A1111 names a run's checkpoints NAME-STEP inside (each is its own word) and NAME.pt NAME; the picture hides
    # the step's checkpoint, with the model it was trained on
    finished = train(settings(tmp_path, preview_every=6), model)
    folder = finished.log_folder
    for step in (6, 12):
        stored = load_pickle(folder / f"embeddings/zqx-{step}.pt")
        assert (stored["name"], stored["step"]) == (f"zqx-{step}", step)
        assert (stored["sd_checkpoint"], stored["sd_checkpoint_name"]) == (model.short_hash, "tiny-sd1")
        inside = read_png_embedding(folder / f"image_embeddings/zqx-{step}.png")
        assert (inside.name, inside.step) == (f"zqx-{step}", step)
        assert (inside.sd_checkpoint, inside.sd_checkpoint_name) == (model.short_hash, "tiny-sd1")
    final = load_pickle(finished.embedding_path)
    assert (final["name"], final["sd_checkpoint"], final["sd_checkpoint_name"]) == ("zqx", model.short_hash,
                                                                                     "tiny-sd1")
