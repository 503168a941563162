"""encode_prompts: a batch in one pass gives each prompt's own conditioning, padded to the longest."""

from __future__ import annotations

import pytest
import torch

from oneword.conditioning.encode import encode_prompt, encode_prompts
from oneword.embeddings.embedding import Embedding


@pytest.mark.parametrize("kind", ["sd1", "sdxl"])
def test_each_row_equals_the_prompt_encoded_alone(tiny_models, kind):
    model = tiny_models(kind)
    widths = [e.width for e in model.encoders]
    vectors = {"*": torch.randn(2, widths[0])} if kind == "sd1" else {
        "clip_l": torch.randn(2, widths[0]), "clip_g": torch.randn(2, widths[1])}
    embeddings = {"zqx": Embedding(name="zqx", vectors=vectors)}
    prompts = ["a photo of zqx", "(red:1.3) ball BREAK on grass", ""]
    batch = encode_prompts(model, prompts, embeddings)
    assert batch.context.shape[:2] == (3, 154)  # the BREAK prompt has two chunks; the others are padded to two
    for row, prompt in enumerate(prompts):
        alone = encode_prompt(model, prompt, embeddings, n_chunks=2)
        assert torch.allclose(batch.context[row], alone.context[0], atol=1e-5)
        if kind == "sdxl":
            assert torch.allclose(batch.pooled[row], alone.pooled[0], atol=1e-5)


def test_gradients_reach_the_vectors_through_a_batch(tiny_sd1):
    vectors = torch.zeros(1, tiny_sd1.encoders[0].width, requires_grad=True)
    cond = encode_prompts(tiny_sd1, ["zqx", "a zqx"], {"zqx": Embedding(name="zqx", vectors={"*": vectors})},
                          grad=True)
    cond.context.sum().backward()
    assert vectors.grad is not None and vectors.grad.abs().sum() > 0
