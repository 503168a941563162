"""Train-tab options on the tiny models: every SD kind, sizes kept and grouped, alpha weights, latent sampling."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from train_helpers import settings, write_images

from oneword.embeddings.create import create_embedding
from oneword.embeddings.formats import load_embedding_file
from oneword.models.tiny import build_tiny
from oneword.train.dataset import epoch_batches, read_dataset
from oneword.train.loop import setup, step_generators, train, training_loss


@pytest.mark.parametrize("kind", ["sd2-v", "sdxl"])
def test_every_kind_trains_and_writes_its_format(tmp_path, kind):
    model = build_tiny(kind, seed=0)
    finished = train(settings(tmp_path, max_steps=3, save_every=0), model)
    saved = load_embedding_file(finished.embedding_path)
    start = create_embedding(model, "zqx", "ball", 1)
    assert saved.step == 3 and set(saved.vectors) == set(start.vectors)
    for key in start.vectors:  # SDXL: both encoders' vectors are trained
        assert not torch.equal(saved.vectors[key], start.vectors[key]), key


def test_the_loss_target_follows_the_prediction_type(tmp_path):
    eps = setup(settings(tmp_path / "e", max_steps=1), build_tiny("sd2", seed=0))
    v = setup(settings(tmp_path / "v", max_steps=1), build_tiny("sd2-v", seed=0))
    assert (eps.model.prediction_type, v.model.prediction_type) == ("epsilon", "v_prediction")
    gen, rng = step_generators(0, 1)
    loss_eps = training_loss(eps, [0, 1], gen, rng)
    gen, rng = step_generators(0, 1)
    loss_v = training_loss(v, [0, 1], gen, rng)  # same weights, noise and timesteps: only the target differs
    assert torch.isfinite(loss_eps) and torch.isfinite(loss_v) and not torch.isclose(loss_eps, loss_v)


def test_gradient_checkpointing_gives_the_same_gradient(tmp_path):
    grads = []
    for checkpointing in (False, True):
        run = setup(settings(tmp_path / str(checkpointing), gradient_checkpointing=checkpointing),
                    build_tiny("sd1", seed=0))
        gen, rng = step_generators(0, 1)
        training_loss(run, [0, 1], gen, rng).backward()
        grads.append(run.trainable.parameters()[0].grad.clone())
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_keep_size_groups_batches_by_size(tmp_path):
    data = tmp_path / "data"
    write_images(data, n=4, size=(64, 64))
    write_images(data / "tmp", n=3, size=(83, 48), seed=1)
    for p in (data / "tmp").iterdir():
        p.rename(data / f"wide-{p.name}")
    dataset = read_dataset(data, None)
    sizes = [im.size for im in dataset.images]
    assert sorted(set(sizes)) == [(64, 64), (80, 48)]  # rounded down to multiples of 8
    for epoch in range(3):
        batches = epoch_batches(sizes, 2, seed=0, epoch=epoch)
        assert all(len({sizes[i] for i in b}) == 1 for b in batches)
        assert sorted(len(b) for b in batches) == [2, 2, 2]  # 4 square: two batches; 3 wide: one (last dropped)
    assert epoch_batches(sizes, 2, 0, 1) == epoch_batches(sizes, 2, 0, 1)
    finished = train(settings(tmp_path, data=data, keep_size=True, max_steps=4, save_every=0), build_tiny("sd1", 0))
    assert finished.step == 4


def test_resized_images_are_read_upright_at_the_training_size(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown upright it is 20 wide, 40 tall
    image.save(data / "photo.jpg", exif=exif)
    kept = read_dataset(data, None).images[0]
    assert kept.size == (16, 40)
    assert read_dataset(data, (32, 24)).images[0].size == (32, 24)
    assert kept.caption == "photo"


def test_alpha_becomes_a_loss_weight_with_mean_one(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pixels = Image.new("RGBA", (64, 64), (200, 10, 10, 0))
    pixels.paste((200, 10, 10, 255), (0, 0, 32, 64))  # left half opaque
    pixels.save(data / "half.png")
    run = setup(settings(tmp_path, data=data, alpha_weight=True, batch_size=1), build_tiny("sd1", seed=0))
    weight = run.latents.weight[0]  # (1, h, w)
    assert torch.allclose(weight.mean(), torch.tensor(1.0))
    w = weight.shape[-1]
    assert torch.all(weight[..., : w // 2] == 2.0) and torch.all(weight[..., w // 2 :] == 0.0)
    plain = setup(settings(tmp_path / "p", data=data, batch_size=1), build_tiny("sd1", seed=0))
    assert plain.latents.weight[0] is None


def test_latent_sampling_modes(tmp_path):
    runs = {mode: setup(settings(tmp_path / mode, latent_sampling=mode), build_tiny("sd1", seed=0))
            for mode in ("once", "deterministic", "random")}
    gen = torch.Generator().manual_seed(0)
    mean = runs["deterministic"].latents.latent(0, gen)
    assert torch.equal(mean, runs["deterministic"].latents.latent(0, gen))
    once = runs["once"].latents.latent(0, gen)
    assert not torch.equal(once, mean) and torch.equal(once, runs["once"].latents.latent(0, gen))
    first, second = runs["random"].latents.latent(0, gen), runs["random"].latents.latent(0, gen)
    assert not torch.equal(first, second)


def test_tag_shuffling_reaches_the_prompts(tmp_path, monkeypatch):
    run = setup(settings(tmp_path, shuffle_tags=True, template="subject_filewords"), build_tiny("sd1", seed=0))
    seen = []
    monkeypatch.setattr(run.trainable, "conditioning", lambda model, prompts: seen.extend(prompts) or
                        type(run.trainable).conditioning(run.trainable, model, prompts))
    for step in range(1, 9):
        gen, rng = step_generators(0, step)
        training_loss(run, [1], gen, rng)  # image 1 has the caption "a blue ball, on grass"
    tails = {p.split(", ", 1)[1] for p in seen}
    assert tails == {"a blue ball, on grass", " on grass,a blue ball"}
    assert all("zqx" in p for p in seen)


def test_caption_dropout_trains_a_share_of_hypernetwork_prompts_as_the_empty_prompt(tmp_path, monkeypatch):
    from oneword.hypernetworks.create import CreateHypernetworkConfig, create_hypernetwork_file

    model = build_tiny("sd1", seed=0)
    create_hypernetwork_file(model, CreateHypernetworkConfig("zqx", hypernetwork_dir=tmp_path / "hn", seed=0))
    run = setup(settings(tmp_path, kind="hypernetwork", template="hypernetwork", hypernetwork_dir=tmp_path / "hn",
                         caption_dropout=0.5), model)
    seen = []
    monkeypatch.setattr(run.trainable, "conditioning", lambda model, prompts: seen.extend(prompts) or
                        type(run.trainable).conditioning(run.trainable, model, prompts))
    for step in range(1, 41):
        gen, rng = step_generators(0, step)
        loss = training_loss(run, [1], gen, rng)
        assert torch.isfinite(loss)
    empty = seen.count("")
    assert 10 <= empty <= 30  # about half of 40
    assert all("a blue ball, on grass" in p for p in seen if p)


@pytest.mark.parametrize(("changes", "message"), [
    ({"kind": "hypernetwork", "caption_dropout": 1.0}, "--caption-dropout must be in [0, 1), but is 1.0"),
    ({"caption_dropout": 0.1}, "--caption-dropout is for hypernetworks"),
])
def test_caption_dropout_out_of_range_or_on_an_embedding_is_refused(tmp_path, changes, message):
    assert any(message in p for p in settings(tmp_path, **changes).problems())
