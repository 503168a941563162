"""Unseen words on the toy model: which tokens are drawn, how visible they are, and what appending one changes."""

from __future__ import annotations

import copy
import random
import re

import numpy as np
import pytest
import torch
from cli_helpers import run_in_process

from oneword.errors import OnewordError
from oneword.models.tokenizer import clip_tokenizer
from oneword.toy.bundle import load_toy
from oneword.toy.report import MeaningTrial, ReportConfig, meaning_shift, meaning_trials
from oneword.toy.words import CAPTION_WORDS, WORLD_NAMES, unseen_tokens, visibility, word_visibility
from oneword.toy.world import Scene, caption, random_scene, render


@pytest.fixture(scope="module")
def toy():
    return load_toy("toy")


def test_caption_words_are_every_word_a_pretraining_caption_can_hold():
    rng = random.Random(0)
    used = set()
    for _ in range(3000):
        used.update(re.findall(r"[a-z]+", caption(random_scene(rng), rng, generic_rate=0.2)))
    assert used == set(CAPTION_WORDS)


def test_unseen_tokens_are_drawn_reproducibly_and_are_never_caption_words_world_names_or_private_tokens():
    tokenizer = clip_tokenizer()
    drawn = unseen_tokens(tokenizer, 300, seed=0)
    assert drawn == unseen_tokens(tokenizer, 300, seed=0)
    assert unseen_tokens(tokenizer, 40, seed=0) == drawn[:40]
    assert unseen_tokens(tokenizer, 300, seed=1) != drawn
    assert len(set(drawn)) == 300
    known = {i for w in (*CAPTION_WORDS, *WORLD_NAMES) for i in tokenizer(w, add_special_tokens=False).input_ids}
    ids = [tokenizer(w, add_special_tokens=False).input_ids for w in drawn]
    assert all(len(i) == 1 for i in ids)  # each is one token, as a rare trigger word is
    # the pretraining's private tokens were rows past the vocabulary (ids len(tokenizer) + i)
    assert all(i[0] not in known and i[0] < len(tokenizer) for i in ids)
    with pytest.raises(OnewordError, match="1000000 unseen tokens asked for"):
        unseen_tokens(tokenizer, 10**6)


def test_visibility_separates_the_words_the_encoder_learned_from_unseen_tokens(toy):
    model, _ = toy
    figures = word_visibility(model.encoders[0], 200)
    # today's bundled encoder never trained the unseen tokens' rows: they barely move its output
    assert figures["caption_median"] > 10 * figures["unseen_median"] > 0
    assert figures["ratio"] == figures["unseen_median"] / figures["caption_median"]
    assert figures["caption_words"]["circle"] > figures["caption_median"]


def test_visibility_is_that_of_the_word_whose_embedding_a_token_is_given(toy):
    model, _ = toy
    encoder = copy.deepcopy(model.encoders[0])
    token = unseen_tokens(encoder.tokenizer, 1)[0]
    (token_id,) = encoder.tokenizer(token, add_special_tokens=False).input_ids
    (circle_id,) = encoder.tokenizer("circle", add_special_tokens=False).input_ids
    before, circle = visibility(encoder, [token, "circle"])
    with torch.no_grad():
        encoder.model.get_input_embeddings().weight[token_id] = encoder.model.get_input_embeddings().weight[circle_id]
    (after,) = visibility(encoder, [token])
    assert before < circle / 10
    assert after == pytest.approx(circle, rel=1e-5)


def test_meaning_compares_each_token_with_the_same_prompt_and_seeds_without_it(toy):
    model, judge = toy
    rc = ReportConfig(steps=6, meaning_samples=2)
    token = unseen_tokens(model.encoders[0].tokenizer, 1)[0]
    removed, appended = meaning_trials(model, ["", token], rc)
    assert (removed.shape, removed.colour) != (appended.shape, appended.colour)
    pixels = [[np.asarray(im) for im in images] for images in (removed.with_token, removed.without,
                                                                 appended.with_token, appended.without)]
    assert all((a == b).all() for a, b in zip(pixels[0], pixels[1], strict=True))
    assert any((a != b).any() for a, b in zip(pixels[2], pixels[3], strict=True))  # the token does reach the model
    shift = meaning_shift(judge, [removed])
    assert shift["shape"]["points"] == shift["colour"]["points"] == 0.0
    assert shift["shape"]["with"] == shift["shape"]["without"]


def test_meaning_shift_is_the_agreement_lost_in_points():
    from oneword.toy.bundle import bundled_toy_path
    from oneword.toy.judge import load_judge

    judge = load_judge(bundled_toy_path() / "judge.safetensors")
    red = [render(Scene("circle", "red", "dark", "large", "center"), seed=s) for s in range(4)]
    blue = [render(Scene("circle", "blue", "dark", "large", "center"), seed=s) for s in range(4)]
    trials = [MeaningTrial("x", "circle", "red", with_token=blue[:2] + red[2:], without=red),
              MeaningTrial("y", "circle", "red", with_token=red, without=red)]
    shift = meaning_shift(judge, trials)
    assert shift["colour"] == {"with": 0.75, "without": 1.0, "points": -25.0}
    assert shift["shape"] == {"with": 1.0, "without": 1.0, "points": 0.0}


def test_the_report_refuses_counts_under_one_in_one_line(monkeypatch, capsys, tmp_path):
    code, out, err = run_in_process(monkeypatch, capsys, "toy", "report", "--tokens", "0", "--meaning-samples", "-1",
                                    "--out", str(tmp_path / "report"))
    assert code != 0 and out == ""
    assert err.strip().splitlines() == [
        "error: --tokens must be at least 1, but is 0; --meaning-samples must be at least 1, but is -1"
    ]
    assert not (tmp_path / "report").exists()
