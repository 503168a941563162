"""The loss on a fixed validation batch: the same batch at every measurement, and no effect on training."""

from __future__ import annotations

import torch
from train_helpers import settings

from oneword.embeddings.formats import load_embedding_file
from oneword.models.tiny import build_tiny
from oneword.train import events
from oneword.train.loop import setup, train, validation_loss
from oneword.train.validation import validation_batch


def test_the_validation_batch_is_the_same_at_every_call():
    args = ([(4, 8, 8), (4, 8, 8), (4, 6, 8)], ["a", "b", "c"], ["a photo of [name], [filewords]"], "zqx", 1000, 8)
    first, second = validation_batch(*args, seed=3), validation_batch(*args, seed=3)
    assert first.indices == second.indices == [0, 1, 2, 0, 1, 2, 0, 1]
    assert all(torch.equal(a, b) for a, b in zip(first.noise, second.noise))
    assert first.timesteps == second.timesteps and first.prompts == second.prompts
    assert sorted(first.timesteps) == [62, 187, 312, 437, 562, 687, 812, 937]  # spread over the whole range
    assert first.prompts[:3] == ["a photo of zqx, a", "a photo of zqx, b", "a photo of zqx, c"]
    assert [tuple(n.shape) for n in first.noise[:3]] == [(4, 8, 8), (4, 8, 8), (4, 6, 8)]
    other = validation_batch(*args, seed=4)
    assert not torch.equal(first.noise[0], other.noise[0])


def test_validation_loss_is_repeatable_and_follows_the_vectors(tmp_path):
    run = setup(settings(tmp_path), build_tiny("sd1", seed=0))
    before = validation_loss(run)
    assert validation_loss(run) == before
    # A direction, not the same number in every channel: the encoder's layer norms erase such a shift
    # (tests/conditioning/test_vectors_reach_encoder.py), which would leave the loss as it was.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in run.trainable.parameters():
            p.add_(torch.randn(p.shape, generator=generator).to(p))
    assert abs(validation_loss(run) - before) > 1e-5  # a thousand times the rounding of a float32 sum


def test_validation_is_in_the_csv_and_leaves_training_alone(tmp_path):
    seen = []
    with_val = train(settings(tmp_path / "a", validate_every=4), build_tiny("sd1", seed=0), seen.append)
    without = train(settings(tmp_path / "b", validate_every=0), build_tiny("sd1", seed=0))
    a = load_embedding_file(with_val.embedding_path).vectors["*"]
    b = load_embedding_file(without.embedding_path).vectors["*"]
    assert torch.equal(a, b)
    rows = [r.split(",") for r in (with_val.log_folder / "textual_inversion_loss.csv").read_text().splitlines()[1:]]
    assert [(r[0], r[5] != "") for r in rows] == [("3", False), ("4", True), ("6", False), ("8", True), ("9", False),
                                                  ("12", True)]
    validated = [e for e in seen if isinstance(e, events.Validated)]
    assert [e.step for e in validated] == [4, 8, 12]
    assert [f"{e.val_loss:.7f}" for e in validated] == [r[5] for r in rows if r[5]]
    rows_b = (without.log_folder / "textual_inversion_loss.csv").read_text().splitlines()[1:]
    assert all(r.endswith(",") for r in rows_b)  # the column stays, empty
