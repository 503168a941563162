"""Prompt to conditioning on tiny models: chunks, padding, embeddings, weights, SDXL, and parity with diffusers."""

from __future__ import annotations

import pytest
import torch
from conditioning_helpers import (
    BANG,
    BOS,
    CAT,
    COMMA,
    DOG,
    EOS,
    OF,
    PHOTO,
    VOCAB,
    A,
    make_embedding,
    with_norm_bias,
)
from torch import nn
from transformers.models.clip.modeling_clip import CLIPTextEmbeddings

from oneword.conditioning.encode import (
    PromptChunk,
    apply_weights,
    chunk_token_ids,
    encode_pair,
    encode_prompt,
    prompt_chunks,
)
from oneword.conditioning.tokens import EmbeddingVocabulary, extended_tokens
from oneword.embeddings.embedding import Embedding
from oneword.errors import OnewordError


def chunks_of(model, prompt: str, embeddings=None) -> list[PromptChunk]:
    return prompt_chunks(model, prompt, EmbeddingVocabulary(model, embeddings))


class Capture:
    """Records what each text encoder of a model receives (input ids) and its token vectors, during a call."""

    def __init__(self, model):
        self.model = model
        self.ids: list[torch.Tensor] = []
        self.token_vectors: list[torch.Tensor] = []
        self.handles = []

    def __enter__(self):
        for encoder in self.model.encoders:
            layer = next(m for m in encoder.model.modules() if isinstance(m, CLIPTextEmbeddings))

            def record(module, args, kwargs, output, layer=layer):
                ids = kwargs["input_ids"]
                self.ids.append(ids.clone())
                positions = layer.position_embedding.weight[: ids.shape[-1]]
                self.token_vectors.append((output - positions).detach())  # (n_chunks, 77, width)

            self.handles.append(layer.register_forward_hook(record, with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def test_kind_tokenizers_agree_with_the_hard_coded_ids(tiny_models):
    for kind in ("sd1", "sd2", "sdxl"):
        for encoder in tiny_models(kind).encoders:
            vocab = encoder.tokenizer.get_vocab()
            assert [vocab[t] for t in ["a</w>", "photo</w>", "of</w>", "cat</w>", "dog</w>", ",</w>"]] == [
                A, PHOTO, OF, CAT, DOG, COMMA,
            ]
            assert (encoder.tokenizer.bos_token_id, encoder.tokenizer.eos_token_id) == (BOS, EOS)


@pytest.mark.parametrize(
    ("words", "lengths"), [(74, [74]), (75, [75]), (76, [75, 1]), (100, [75, 25]), (151, [75, 75, 1])]
)
def test_long_prompts_split_into_75_token_chunks(tiny_sd1, words, lengths):
    chunks = chunks_of(tiny_sd1, "cat " * words)
    assert [len(c.ids) for c in chunks] == lengths
    assert all(c.ids == [CAT] * len(c.ids) and c.weights == [1.0] * len(c.ids) for c in chunks)
    cond = encode_prompt(tiny_sd1, "cat " * words)
    assert cond.context.shape == (1, 77 * len(lengths), 64)
    assert cond.pooled is None


def test_comma_backtrack_moves_the_words_after_a_near_comma(tiny_sd1):
    # 70 words, a comma, 10 words: the chunk fills at the 5th word after the comma, which is 5 tokens back.
    chunks = chunks_of(tiny_sd1, "cat " * 70 + ", " + "dog " * 10)
    assert [c.ids for c in chunks] == [[CAT] * 70 + [COMMA], [DOG] * 10]
    ids = chunk_token_ids(chunks, tiny_sd1.encoders[0].tokenizer)
    assert ids[0].tolist() == [BOS] + [CAT] * 70 + [COMMA] + [EOS] * 5


def test_comma_backtrack_reaches_20_tokens_and_no_further(tiny_sd1):
    near = chunks_of(tiny_sd1, "cat " * 55 + ", " + "dog " * 30)  # comma at index 55: 75 - 55 = 20
    assert [c.ids for c in near] == [[CAT] * 55 + [COMMA], [DOG] * 30]
    far = chunks_of(tiny_sd1, "cat " * 54 + ", " + "dog " * 30)  # comma at index 54: 21 back, no backtrack
    assert [c.ids for c in far] == [[CAT] * 54 + [COMMA] + [DOG] * 20, [DOG] * 10]


def test_backtrack_carries_weights_and_embeddings(tiny_sd1):
    emb = make_embedding(tiny_sd1, "emb", 2)
    chunks = chunks_of(tiny_sd1, "cat " * 70 + ", (dog:1.5) emb " + "dog " * 5, {"emb": emb})
    assert chunks[0].ids == [CAT] * 70 + [COMMA]
    assert chunks[1].ids == [DOG, VOCAB, VOCAB + 1] + [DOG] * 5
    assert chunks[1].weights == [1.5] + [1.0] * 7


def test_break_closes_the_chunk(tiny_sd1):
    assert [c.ids for c in chunks_of(tiny_sd1, "a cat BREAK a dog")] == [[A, CAT], [A, DOG]]
    # As A1111: BREAK first gives an empty first chunk; BREAK last adds nothing.
    assert [c.ids for c in chunks_of(tiny_sd1, "BREAK a cat")] == [[], [A, CAT]]
    assert [c.ids for c in chunks_of(tiny_sd1, "a cat BREAK")] == [[A, CAT]]
    assert encode_prompt(tiny_sd1, "a cat BREAK a dog").context.shape == (1, 154, 64)
    two = encode_prompt(tiny_sd1, "a cat BREAK a dog").context
    assert torch.equal(two[:, :77], encode_prompt(tiny_sd1, "a cat").context)
    assert torch.equal(two[:, 77:], encode_prompt(tiny_sd1, "a dog").context)


@pytest.mark.parametrize(("kind", "pads"), [("sd1", [EOS]), ("sd2", [BANG]), ("sdxl", [EOS, BANG])])
def test_padding_ids_per_kind(tiny_models, kind, pads):
    model = tiny_models(kind)
    with Capture(model) as seen:
        encode_prompt(model, "a photo")
    assert len(seen.ids) == len(pads)
    for ids, pad in zip(seen.ids, pads):
        assert ids.tolist() == [[BOS, A, PHOTO, EOS] + [pad] * 73]
    with Capture(model) as seen:
        encode_prompt(model, "")
    for ids, pad in zip(seen.ids, pads):
        assert ids.tolist() == [[BOS, EOS] + [pad] * 75]


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl"])
@pytest.mark.parametrize("n", [1, 3])
def test_embedding_vectors_replace_the_name(tiny_models, kind, n):
    model = tiny_models(kind)
    emb = make_embedding(model, "<my-thing>", n)
    with Capture(model) as seen:
        encode_prompt(model, "a photo of <My-Thing> cat", {"<my-thing>": emb})
    for encoder, ids, rows, vectors in zip(model.encoders, seen.ids, seen.token_vectors, emb.vectors_for(model)):
        expected_ids = [BOS, A, PHOTO, OF, *range(VOCAB, VOCAB + n), CAT, EOS]
        assert ids[0, : len(expected_ids)].tolist() == expected_ids
        table = encoder.model.get_input_embeddings().weight
        assert torch.allclose(rows[0, 4 : 4 + n], vectors, atol=1e-6)
        assert torch.allclose(rows[0, :4], table[[BOS, A, PHOTO, OF]], atol=1e-6)
        assert torch.allclose(rows[0, 4 + n], table[CAT], atol=1e-6)
        # The encoder gets its own token table back.
        assert type(encoder.model.get_input_embeddings()) is nn.Embedding


def test_longest_embedding_name_matches_first(tiny_sd1):
    short = make_embedding(tiny_sd1, "cat", 1, seed=1)
    long = make_embedding(tiny_sd1, "cat dog", 2, seed=2)
    embeddings = {"cat": short, "cat dog": long}
    chunks = chunks_of(tiny_sd1, "a cat dog, a cat", embeddings)
    # "cat dog" is used first and gets the first placeholders; "cat" the next one.
    assert chunks[0].ids == [A, VOCAB, VOCAB + 1, COMMA, A, VOCAB + 2]


def test_embedding_never_straddles_a_chunk(tiny_sd1):
    emb = make_embedding(tiny_sd1, "emb", 3)
    moved = chunks_of(tiny_sd1, "cat " * 73 + "emb", {"emb": emb})
    assert [c.ids for c in moved] == [[CAT] * 73, [VOCAB, VOCAB + 1, VOCAB + 2]]
    fits = chunks_of(tiny_sd1, "cat " * 72 + "emb", {"emb": emb})
    assert [c.ids for c in fits] == [[CAT] * 72 + [VOCAB, VOCAB + 1, VOCAB + 2]]
    with Capture(tiny_sd1) as seen:
        cond = encode_prompt(tiny_sd1, "cat " * 73 + "emb", {"emb": emb})
    assert cond.context.shape == (1, 154, 64)
    assert seen.ids[0][0].tolist() == [BOS] + [CAT] * 73 + [EOS] * 3
    assert torch.allclose(seen.token_vectors[0][1, 1:4], emb.vectors["*"], atol=1e-6)


def _weighted(z: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """A1111's emphasis on one chunk (1, 77, width), written out."""
    w = torch.tensor(weights + [1.0] * (77 - len(weights)))[None, :, None]
    out = z * w
    return out * (z.mean() / out.mean())


def test_weight_then_mean_restored(tiny_sd1):
    model = with_norm_bias(tiny_sd1)
    plain = encode_prompt(model, "a cat").context
    weighted = encode_prompt(model, "(a:1.5) cat").context
    expected = _weighted(plain, [1.0, 1.5, 1.0])
    assert torch.allclose(weighted, expected, atol=1e-6)
    assert not torch.allclose(weighted, plain, atol=1e-3)
    assert torch.allclose(weighted.mean(), plain.mean(), rtol=1e-5)
    assert 0.09 < plain.mean().item() < 0.11


def test_weights_are_restored_per_chunk_and_per_encoder(tiny_models):
    model = tiny_models("sdxl")
    plain = encode_prompt(model, "a cat BREAK a dog").context  # (1, 154, 192)
    weighted = encode_prompt(model, "[a] cat BREAK a (dog)").context
    for chunk, weights in ((slice(0, 77), [1.0, 1 / 1.1]), (slice(77, 154), [1.0, 1.0, 1.1])):
        for width in (slice(0, 64), slice(64, 192)):  # clip_l, then clip_g
            expected = _weighted(plain[:, chunk, width], weights)
            assert torch.allclose(weighted[:, chunk, width], expected, atol=1e-6)


def test_sdxl_context_and_pooled(tiny_models):
    model = tiny_models("sdxl")
    clip_l, clip_g = model.encoders
    cond = encode_prompt(model, "a photo of a cat")
    assert cond.context.shape == (1, 77, 192)
    assert cond.pooled.shape == (1, 128)
    ids_l = torch.tensor([[BOS, A, PHOTO, OF, A, CAT, EOS] + [EOS] * 70])
    ids_g = torch.tensor([[BOS, A, PHOTO, OF, A, CAT, EOS] + [BANG] * 70])
    with torch.no_grad():
        out_l = clip_l.model(input_ids=ids_l, output_hidden_states=True)
        out_g = clip_g.model(input_ids=ids_g, output_hidden_states=True)
    assert torch.allclose(cond.context[..., :64], out_l.hidden_states[-2], atol=1e-6)
    assert torch.allclose(cond.context[..., 64:], out_g.hidden_states[-2], atol=1e-6)
    assert torch.allclose(cond.pooled, out_g.text_embeds, atol=1e-6)
    # Only the first chunk gives the pooled vector.
    assert torch.equal(encode_prompt(model, "a photo of a cat BREAK a dog").pooled, cond.pooled)


def test_sdxl_pooled_is_read_at_the_eos_with_an_embedding(tiny_models):
    model = tiny_models("sdxl")
    clip_g = model.encoders[1]
    emb = make_embedding(model, "emb", 2)
    cond = encode_prompt(model, "a emb", {"emb": emb})
    ids = torch.tensor([[BOS, A, VOCAB, VOCAB + 1, EOS] + [BANG] * 72])
    with torch.no_grad(), extended_tokens(clip_g.model, emb.vectors["clip_g"]):
        last = clip_g.model(input_ids=ids).last_hidden_state  # final-normed
        expected = clip_g.model.text_projection(last[0, 4])
    assert torch.allclose(cond.pooled[0], expected, atol=1e-6)


def test_sd_kinds_have_no_pooled(tiny_models):
    assert encode_prompt(tiny_models("sd2"), "a cat").pooled is None


def test_n_chunks_pads_with_empty_chunks(tiny_sd1):
    cond = encode_prompt(tiny_sd1, "a cat", n_chunks=3)
    assert cond.context.shape == (1, 231, 64)
    assert torch.equal(cond.context[:, :77], encode_prompt(tiny_sd1, "a cat").context)
    empty = encode_prompt(tiny_sd1, "").context
    assert torch.equal(cond.context[:, 77:154], empty)
    assert torch.equal(cond.context[:, 154:], empty)
    with pytest.raises(OnewordError, match="needs 2 chunks of 75 tokens; n_chunks is 1"):
        encode_prompt(tiny_sd1, "cat " * 80, n_chunks=1)


def test_pair_pads_the_shorter_with_empty_chunks(tiny_sd1):
    long = "cat " * 100
    cond, uncond = encode_pair(tiny_sd1, long, "blurry")
    assert cond.context.shape == uncond.context.shape == (1, 154, 64)
    assert torch.equal(cond.context, encode_prompt(tiny_sd1, long).context)
    assert torch.equal(uncond.context[:, :77], encode_prompt(tiny_sd1, "blurry").context)
    assert torch.equal(uncond.context[:, 77:], encode_prompt(tiny_sd1, "").context)
    cond, uncond = encode_pair(tiny_sd1, "a cat", long)
    assert cond.context.shape == uncond.context.shape == (1, 154, 64)
    assert torch.equal(cond.context[:, 77:], encode_prompt(tiny_sd1, "").context)


def test_pair_sdxl_empty_negative_is_zeros(tiny_models):
    model = tiny_models("sdxl")
    cond, uncond = encode_pair(model, "a cat", "")
    assert torch.equal(uncond.context, torch.zeros(1, 77, 192))
    assert torch.equal(uncond.pooled, torch.zeros(1, 128))
    cond, uncond = encode_pair(model, "a cat", "a dog")
    assert torch.equal(uncond.pooled, encode_prompt(model, "a dog").pooled)
    # SD 1.x encodes the empty negative prompt.
    _, uncond = encode_pair(tiny_models("sd1"), "a cat", "")
    assert torch.equal(uncond.context, encode_prompt(tiny_models("sd1"), "").context)


def test_gradients_reach_only_the_embedding_vectors(tiny_models):
    model = tiny_models("sdxl")
    vectors = {"clip_l": torch.randn(2, 64, requires_grad=True), "clip_g": torch.randn(2, 128, requires_grad=True)}
    emb = Embedding(name="emb", vectors=vectors)
    cond = encode_prompt(model, "a photo of (emb:1.2)", {"emb": emb}, grad=True)
    (cond.context.square().mean() + cond.pooled.square().mean()).backward()
    assert vectors["clip_l"].grad.shape == (2, 64) and vectors["clip_l"].grad.abs().sum() > 0
    assert vectors["clip_g"].grad.shape == (2, 128) and vectors["clip_g"].grad.abs().sum() > 0
    assert all(p.grad is None for e in model.encoders for p in e.model.parameters())
    frozen = encode_prompt(model, "a photo of emb", {"emb": emb})
    assert not frozen.context.requires_grad


def test_embedding_of_another_model_is_refused(tiny_models):
    sdxl_emb = make_embedding(tiny_models("sdxl"), "emb", 1)
    with pytest.raises(OnewordError, match="embedding 'emb' does not fit tiny-sd1"):
        encode_prompt(tiny_models("sd1"), "a emb", {"emb": sdxl_emb})
    # An embedding that is not in the prompt is not looked at.
    assert encode_prompt(tiny_models("sd1"), "a cat", {"emb": sdxl_emb}).context.shape == (1, 77, 64)


def test_weighting_a_chunk_with_a_zero_mean_keeps_the_plain_product():
    # the tiny models' outputs average about 1e-9: dividing by the weighted mean would blow up to inf/NaN
    z = torch.tensor([[[1.0, -1.0], [2.0, -2.0]]])  # (1, 2, 2), mean exactly 0
    weights = torch.tensor([[1.5, 1.0]])
    out = apply_weights(z, weights)
    assert torch.equal(out, torch.tensor([[[1.5, -1.5], [2.0, -2.0]]]))


def test_weighting_still_restores_an_ordinary_mean():
    z = torch.tensor([[[1.0, 3.0], [2.0, 2.0]]])  # mean 2
    out = apply_weights(z, torch.tensor([[2.0, 1.0]]))
    scaled = torch.tensor([[[2.0, 6.0], [2.0, 2.0]]])  # mean 3
    assert torch.allclose(out, scaled * (2.0 / 3.0))
    assert torch.isclose(out.mean(), torch.tensor(2.0))
