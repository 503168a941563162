"""The toy world's renderer, captions and concepts."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from oneword.errors import OnewordError
from oneword.toy.concepts import CONCEPTS, get_concept, write_concept_examples
from oneword.toy.world import (
    BACKGROUNDS,
    COLOURS,
    HIDDEN_SHAPES,
    NAMED_SHAPES,
    Scene,
    caption,
    random_scene,
    render,
)


def test_render_is_deterministic_per_seed():
    scene = Scene("star", "red", "dark", "small", "top left")
    a, b = np.asarray(render(scene, seed=3)), np.asarray(render(scene, seed=3))
    c = np.asarray(render(scene, seed=4))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_render_shows_the_colour_on_the_background():
    scene = Scene("square", "blue", "light", "large", "center")
    pixels = np.asarray(render(scene, seed=0)).reshape(-1, 3)
    colours = {tuple(p) for p in pixels}
    assert COLOURS["blue"] in colours
    assert BACKGROUNDS["light"] in colours
    # outlines leave the middle of the shape as background
    outlined = np.asarray(render(Scene("square", "blue", "light", "large", "center", "outline"), seed=0))
    assert tuple(outlined[32, 32]) == BACKGROUNDS["light"]
    assert tuple(pixels.reshape(64, 64, 3)[32, 32]) == COLOURS["blue"]


def test_small_shapes_sit_in_their_quadrant():
    image = np.asarray(render(Scene("circle", "red", "dark", "small", "bottom right"), seed=1)).astype(int)
    ink = np.abs(image - np.array(BACKGROUNDS["dark"])).sum(-1) > 60
    ys, xs = np.nonzero(ink)
    assert ys.mean() > 36 and xs.mean() > 36


def test_captions_name_shapes_but_never_hidden_shapes_or_style():
    rng = random.Random(0)
    seen_hidden = 0
    for _ in range(2000):
        scene = random_scene(rng)
        text = caption(scene, rng)
        assert "outline" not in text
        assert not any(h in text for h in HIDDEN_SHAPES)
        if scene.shape in NAMED_SHAPES:
            assert scene.shape in text
        else:
            seen_hidden += 1
            assert "object" in text
    assert 350 < seen_hidden < 650  # hidden shapes are a quarter of the scenes


def test_a_generic_rate_calls_some_named_shapes_object():
    rng = random.Random(0)
    scene = Scene("circle", "red", "dark", "small", "top left")
    texts = [caption(scene, rng, generic_rate=0.2) for _ in range(1000)]
    generic = sum("object" in t for t in texts)
    assert 150 < generic < 250
    assert all(("object" in t) != ("circle" in t) for t in texts)
    hidden = Scene("star", "red", "dark", "small", "top left")
    assert all("object" in caption(hidden, rng, generic_rate=0.2) for _ in range(100))


def test_concepts_and_their_examples(tmp_path):
    assert {c.kind for c in CONCEPTS.values()} == {"object", "style"}
    assert sum(c.kind == "object" for c in CONCEPTS.values()) >= 3
    star = write_concept_examples(get_concept("star"), tmp_path / "star", n=6)
    assert [p.name for p in star] == [f"{i:02d}-star.png" for i in range(6)]
    assert all(Image.open(p).size == (64, 64) for p in star)
    star_captions = [p.with_suffix(".txt").read_text() for p in star]
    assert all("object" in c and "star" not in c for c in star_captions)
    style = write_concept_examples(get_concept("outline"), tmp_path / "outline", n=5)
    captions = [p.with_suffix(".txt").read_text() for p in style]
    assert all(c.strip() and "outline" not in c for c in captions)
    again = write_concept_examples(get_concept("star"), tmp_path / "again", n=6)
    assert all(np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))) for a, b in zip(star, again))


def test_unknown_concept_is_a_clear_error():
    with pytest.raises(OnewordError, match="unknown toy concept 'moon'; known: star, cross, crescent, outline"):
        get_concept("moon")
