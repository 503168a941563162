"""The token table extended with embedding vectors: casting, gradients, restoring, and parity with diffusers."""

from __future__ import annotations

import copy
import dataclasses
from importlib import resources

import pytest
import torch
from conditioning_helpers import EOS, VOCAB, make_embedding, with_norm_bias
from torch import nn
from transformers import CLIPTokenizer

from oneword.conditioning.encode import encode_prompt
from oneword.conditioning.tokens import ExtendedTokenEmbedding, extended_tokens
from oneword.embeddings.embedding import Embedding
from oneword.models.pipeline import make_pipeline


def test_extended_token_embedding_casts_and_trains_only_extra():
    base = nn.Embedding(10, 4).half().requires_grad_(False)
    extra = nn.Parameter(torch.randn(2, 4))
    layer = ExtendedTokenEmbedding(base, extra)
    ids = torch.tensor([[3, 10, 11, 10]])
    out = layer(ids)
    assert out.dtype == torch.float16 and out.shape == (1, 4, 4)
    assert torch.equal(out[0, 0], base.weight[3])
    assert torch.equal(out[0, 1], extra[0].half()) and torch.equal(out[0, 3], extra[0].half())
    assert torch.equal(out[0, 2], extra[1].half())
    out.float().sum().backward()
    assert extra.grad.dtype == torch.float32
    assert torch.equal(extra.grad, torch.tensor([[2.0] * 4, [1.0] * 4]))
    assert base.weight.grad is None
    named = dict(layer.named_parameters())
    assert set(named) == {"extra", "base.weight"}
    assert named["extra"] is extra and named["base.weight"] is base.weight
    with pytest.raises(ValueError, match="token id 12 is past the 2 extra vectors"):
        layer(torch.tensor([12]))


def test_extended_tokens_restores_the_original_table(tiny_sd1):
    model = tiny_sd1.encoders[0].model
    original = model.get_input_embeddings()
    with pytest.raises(KeyError):
        with extended_tokens(model, torch.zeros(1, 64)) as layer:
            assert model.get_input_embeddings() is layer and layer.base is original
            raise KeyError("boom")
    assert model.get_input_embeddings() is original


def _fresh_tokenizer(pad_token: str) -> CLIPTokenizer:
    folder = resources.files("oneword.data.tokenizer")
    return CLIPTokenizer(
        vocab=str(folder.joinpath("vocab.json")), merges=str(folder.joinpath("merges.txt")),
        pad_token=pad_token, model_max_length=77,
    )


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl"])
@pytest.mark.parametrize("n", [1, 3])
def test_parity_with_diffusers_textual_inversion(tiny_models, kind, n):
    model = tiny_models(kind)
    emb = make_embedding(model, "<thing>", n, seed=n)
    # diffusers adds tokens to the encoders and tokenizers: give it copies, never the shared ones.
    encoders = [
        dataclasses.replace(e, model=copy.deepcopy(e.model), tokenizer=_fresh_tokenizer(e.spec.pad_token))
        for e in model.encoders
    ]
    pipe = make_pipeline(dataclasses.replace(model, encoders=encoders))
    prompt = "a photo of <thing>"
    if model.is_sdxl:
        pipe.load_textual_inversion(
            emb.vectors["clip_l"], token="<thing>", text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
        )
        pipe.load_textual_inversion(
            emb.vectors["clip_g"], token="<thing>", text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
        )
        # transformers takes the pooled vector at argmax(ids) while the config's eos_token_id is the legacy 2,
        # which lands on diffusers' added token ids; with the EOS id it is read at the EOS, as A1111 does.
        pipe.text_encoder_2.text_model.eos_token_id = EOS
        context, _, pooled, _ = pipe.encode_prompt(
            prompt=prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False
        )
    else:
        pipe.load_textual_inversion(emb.vectors["*"], token="<thing>")
        context, _ = pipe.encode_prompt(prompt, "cpu", 1, False)
        pooled = None
    assert len(pipe.tokenizer) == VOCAB + n  # diffusers registered <thing>, <thing>_1, ...
    ours = encode_prompt(model, prompt, {"<thing>": emb})
    assert ours.context.shape == context.shape == (1, 77, 192 if model.is_sdxl else 64)
    assert torch.allclose(ours.context, context, atol=1e-5)
    if model.is_sdxl:
        assert torch.allclose(ours.pooled, pooled, atol=1e-5)
    # The shared tokenizers and encoders are untouched.
    assert all(len(e.tokenizer) == VOCAB for e in model.encoders)
    assert all(e.model.get_input_embeddings().num_embeddings == VOCAB for e in model.encoders)


def test_half_precision_encoder_with_fp32_trainable_vectors(tiny_sd1):
    model = with_norm_bias(tiny_sd1, torch.float16)
    vectors = torch.randn(2, 64, requires_grad=True)
    embeddings = {"emb": Embedding(name="emb", vectors={"*": vectors})}
    for prompt in ("a photo of emb", "a photo of (emb:1.3)"):
        vectors.grad = None
        cond = encode_prompt(model, prompt, embeddings, grad=True)
        assert cond.context.dtype == torch.float16 and cond.context.shape == (1, 77, 64)
        cond.context.float().square().mean().backward()
        assert vectors.grad.dtype == torch.float32
        assert torch.isfinite(vectors.grad).all() and vectors.grad.abs().sum() > 0
        reference = encode_prompt(with_norm_bias(tiny_sd1), prompt, embeddings)
        assert torch.allclose(cond.context.float(), reference.context, atol=2e-2)
