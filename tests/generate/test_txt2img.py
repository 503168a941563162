"""txt2img on tiny models: determinism, batches, samplers, embeddings in the prompt, PNG parameters."""

from __future__ import annotations

import numpy as np
import pytest

from oneword.embeddings.embedding import Embedding
from oneword.errors import OnewordError
from oneword.generate.config import GenerateConfig
from oneword.generate.pnginfo import read_parameters
from oneword.generate.samplers import SAMPLERS
from oneword.generate.txt2img import generate, save_images


def pixels(item) -> np.ndarray:
    return np.asarray(item.image)


def test_same_seed_same_pixels_and_seed_changes_them(tiny_sd1):
    config = GenerateConfig(prompt="a photo of a cat", seed=7, steps=3)
    a, b = generate(tiny_sd1, config)[0], generate(tiny_sd1, config)[0]
    c = generate(tiny_sd1, GenerateConfig(prompt="a photo of a cat", seed=8, steps=3))[0]
    assert a.image.size == (64, 64)
    assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(a), pixels(c))


def test_image_in_batch_equals_same_image_alone(tiny_sd1):
    batch = generate(tiny_sd1, GenerateConfig(prompt="a dog", seed=10, steps=3, batch=2))
    alone = generate(tiny_sd1, GenerateConfig(prompt="a dog", seed=11, steps=3))[0]
    assert [g.parameters.seed for g in batch] == [10, 11]
    assert np.abs(pixels(batch[1]).astype(int) - pixels(alone).astype(int)).max() <= 1


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_draws_and_is_deterministic(tiny_sd1, sampler):
    config = GenerateConfig(prompt="a cat", seed=3, steps=4, sampler=sampler)
    a, b = generate(tiny_sd1, config)[0], generate(tiny_sd1, config)[0]
    assert np.array_equal(pixels(a), pixels(b))
    assert a.parameters.sampler == SAMPLERS[sampler].label


def test_samplers_differ(tiny_sd1):
    images = {s: pixels(generate(tiny_sd1, GenerateConfig(prompt="a cat", seed=3, steps=4, sampler=s))[0])
              for s in ("euler_a", "ddim")}
    assert not np.array_equal(images["euler_a"], images["ddim"])


def test_unknown_sampler_and_bad_settings_are_one_error():
    with pytest.raises(OnewordError) as e:
        GenerateConfig(prompt="x", sampler="heun_x", steps=0, width=30)
    message = str(e.value)
    assert "--sampler: unknown sampler 'heun_x'" in message
    assert "--steps must be at least 1, but is 0" in message
    assert "--width must be a positive multiple of 8, but is 30" in message


@pytest.mark.parametrize("kind", ["sd2", "sd2-v", "sdxl"])
def test_other_kinds_generate(tiny_models, kind):
    model = tiny_models(kind)
    item = generate(model, GenerateConfig(prompt="a cat", negative="blurry", seed=1, steps=2, width=64, height=48))[0]
    assert item.image.size == (64, 48)
    assert pixels(item).std() > 0


def test_embedding_equal_to_a_word_draws_that_word(tiny_models):
    """An embedding whose vector is the token row of "cat" must draw exactly what the word "cat" draws."""
    for kind in ("sd1", "sdxl"):
        model = tiny_models(kind)
        vectors = {}
        for enc in model.encoders:
            row = enc.model.get_input_embeddings().weight[enc.tokenizer.convert_tokens_to_ids("cat</w>")]
            vectors["*" if not model.is_sdxl else enc.spec.key] = row[None].clone()
        emb = Embedding(name="mychar", vectors=vectors)
        with_word = generate(model, GenerateConfig(prompt="a photo of cat", seed=5, steps=2))[0]
        with_emb = generate(model, GenerateConfig(prompt="a photo of mychar", seed=5, steps=2), {"mychar": emb})[0]
        without = generate(model, GenerateConfig(prompt="a photo of mychar", seed=5, steps=2))[0]
        assert np.array_equal(pixels(with_word), pixels(with_emb)), kind
        assert not np.array_equal(pixels(with_word), pixels(without)), kind


def test_saved_png_carries_a1111_parameters(tiny_sd1, tmp_path):
    items = generate(tiny_sd1, GenerateConfig(prompt="a cat, (red:1.2)", negative="blurry", seed=42, steps=2,
                                              cfg=6.5, sampler="dpmpp_2m", batch=2))
    paths = save_images(items, tmp_path)
    assert [p.name for p in paths] == ["00000-42.png", "00001-43.png"]
    assert read_parameters(paths[1]) == (
        "a cat, (red:1.2)\n"
        "Negative prompt: blurry\n"
        f"Steps: 2, Sampler: DPM++ 2M, CFG scale: 6.5, Seed: 43, Size: 64x64, Model hash: {tiny_sd1.short_hash}, "
        "Model: tiny-sd1"
    )
    more = save_images(items[:1], tmp_path)
    assert more[0].name == "00002-42.png"


def test_random_seed_is_recorded(tiny_sd1):
    item = generate(tiny_sd1, GenerateConfig(prompt="a cat", seed=-1, steps=1))[0]
    again = generate(tiny_sd1, GenerateConfig(prompt="a cat", seed=item.parameters.seed, steps=1))[0]
    assert np.array_equal(pixels(item), pixels(again))
