"""The pre-training recipe's private tokens, and a few steps of it on a handful of scenes."""

from __future__ import annotations

import random

import torch

from oneword.models.tokenizer import clip_tokenizer
from oneword.toy.pretrain import PretrainConfig, private_tokens, toy_config, train_diffusion
from oneword.toy.world import Scene

VOCAB = 49408


def test_private_tokens_stand_for_object_in_hidden_shape_captions_only():
    tokenizer = clip_tokenizer("<|endoftext|>")
    (object_id,) = tokenizer("object", add_special_tokens=False).input_ids
    captions = ["a red object", "a blue object", "a green object, small", "a red circle", "a red object"]
    shapes = ["star", "cross", "crescent", "circle", "circle"]  # the last: a named shape called "object"
    ids = tokenizer(captions, padding="max_length", max_length=77, return_tensors="pt").input_ids
    out = private_tokens(ids, shapes, VOCAB, object_id, 1.0, random.Random(0))
    for row, private in enumerate([VOCAB, VOCAB + 1, VOCAB + 2]):
        assert (out[row] == private).sum() == 1 and (out[row] == object_id).sum() == 0
        assert torch.equal(out[row][out[row] != private], ids[row][ids[row] != object_id])
    assert torch.equal(out[3:], ids[3:])
    kept = private_tokens(ids, shapes, VOCAB, object_id, 0.0, random.Random(0))
    assert torch.equal(kept, ids)
    half = torch.stack([private_tokens(ids[:1], shapes[:1], VOCAB, object_id, 0.5, random.Random(i))[0]
                        for i in range(200)])
    assert 60 < (half == VOCAB).any(dim=1).sum() < 140


def test_private_rows_are_dropped_after_training():
    cfg = PretrainConfig(diffusion_steps=2, batch=4, eval_every=0)
    scenes = [Scene(shape, "red", "dark", "small", "top left") for shape in ("star", "cross", "crescent", "circle")]
    latents = torch.randn(len(scenes), 4, 8, 8, generator=torch.Generator().manual_seed(0))
    unet, text = train_diffusion(toy_config(cfg), latents, scenes, cfg, log=lambda line: None)
    assert text.get_input_embeddings().weight.shape[0] == VOCAB and text.config.vocab_size == VOCAB
    assert not unet.training and not any(p.requires_grad for p in text.parameters())


def test_the_recipe_is_deterministic_per_seed():
    """A rebuild with the same seed gives the same weights: VAE and diffusion stages, bit for bit on the CPU."""
    from oneword.toy.pretrain import render_dataset, train_vae

    cfg = PretrainConfig(vae_steps=2, vae_batch=4, diffusion_steps=2, batch=4, eval_every=0)
    config = toy_config(cfg)
    images, scenes = render_dataset(8, seed=0)
    assert torch.equal(images, render_dataset(8, seed=0)[0])
    vaes = [train_vae(config, images, cfg, log=lambda line: None) for _ in range(2)]
    for a, b in zip(vaes[0].state_dict().values(), vaes[1].state_dict().values()):
        assert torch.equal(a, b)
    latents = torch.randn(len(scenes), 4, 8, 8, generator=torch.Generator().manual_seed(0))
    runs = [train_diffusion(config, latents, scenes, cfg, log=lambda line: None) for _ in range(2)]
    for part in range(2):
        first, second = runs[0][part].state_dict(), runs[1][part].state_dict()
        assert all(torch.equal(first[k], second[k]) for k in first)
    other = train_diffusion(config, latents, scenes, PretrainConfig(**{**cfg.__dict__, "seed": 1}), log=lambda l: None)
    assert not torch.equal(other[0].conv_in.weight, runs[0][0].conv_in.weight)
