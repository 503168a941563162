"""An embedding's vectors reach every text encoder of every model kind: changing them changes what the encoders
give the UNet, at the word's positions and after them (the encoders are causal), and nowhere before.

The change is a random direction: a shift by the same number in every channel is erased by the encoders'
layer norms (the first norm of every layer removes it from what attention and the MLP see, the final norm from the
residual stream), so an encoder read after its final norm (SD 1.x, SD 2.x) cannot tell it apart; SDXL reads its
penultimate layer, before that norm, so there it shows.
"""

from __future__ import annotations

import pytest
import torch

from oneword.conditioning.encode import encode_prompt
from oneword.embeddings.embedding import SDXL_KEYS, Embedding
from oneword.models.load import load_base

PROMPT = "a photo of zqx on a table"
WORD_AT = 4
"""Row of the word's first vector: BOS, `a`, `photo`, `of`, then the word."""


def _random_embedding(model, generator: torch.Generator, n: int = 2) -> dict[str, torch.Tensor]:
    widths = [e.width for e in model.encoders]
    keys = SDXL_KEYS if model.is_sdxl else ("*",)
    return {key: torch.randn(n, width, generator=generator) for key, width in zip(keys, widths)}


def _context(model, vectors: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Per encoder, its (77, width) part of the prompt's conditioning."""
    context = encode_prompt(model, PROMPT, {"zqx": Embedding("zqx", vectors)}).context[0]
    return list(context.split([e.width for e in model.encoders], dim=-1))


def _changed_rows(before: torch.Tensor, after: torch.Tensor) -> list[int]:
    return [row for row in range(before.shape[0]) if not torch.allclose(before[row], after[row], atol=1e-5)]


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl", "toy"])
def test_changing_an_embeddings_vectors_changes_each_encoders_output_from_the_word_on(kind, tiny_models):
    model = load_base("toy") if kind == "toy" else tiny_models(kind)
    generator = torch.Generator().manual_seed(7)
    vectors = _random_embedding(model, generator)
    before = _context(model, vectors)
    for changed_key in vectors:  # SDXL: each encoder's vectors alone change that encoder's output alone
        moved = {k: v + (torch.randn(v.shape, generator=generator) if k == changed_key else 0) for k, v in
                 vectors.items()}
        after = _context(model, moved)
        for key, b, a in zip(vectors, before, after):
            rows = _changed_rows(b, a)
            if key == changed_key:
                assert rows == list(range(WORD_AT, 77)), (kind, key)
                assert (a - b).abs().max() > 1e-2
            else:
                assert rows == [], (kind, key)


def test_a_shift_of_every_channel_is_invisible_after_the_final_norm_and_visible_before_it(tiny_models):
    """Why a test that moves vectors must move them in a direction: the same number added to every channel."""
    for kind, visible in (("sd1", False), ("sdxl", True)):
        model = tiny_models(kind)
        vectors = _random_embedding(model, torch.Generator().manual_seed(3))
        before = _context(model, vectors)
        after = _context(model, {k: v + 5.5 for k, v in vectors.items()})
        assert any(_changed_rows(b, a) for b, a in zip(before, after)) is visible, kind
