"""Helpers shared by the conditioning tests: the CLIP ids they check against and small model variants."""

from __future__ import annotations

import copy
import dataclasses

import torch

from oneword.embeddings.embedding import Embedding

# Ids of the CLIP BPE vocabulary (the same in every SD kind).
BOS, EOS, BANG = 49406, 49407, 0
A, PHOTO, OF, CAT, DOG, COMMA = 320, 1125, 539, 2368, 1929, 267
VOCAB = 49408


def make_embedding(model, word: str, n: int, seed: int = 0) -> Embedding:
    """An embedding of `n` random vectors that fits `model`."""
    g = torch.Generator().manual_seed(seed)
    vectors = {e.spec.key: torch.randn(n, e.width, generator=g) for e in model.encoders}
    if not model.is_sdxl:
        vectors = {"*": vectors[model.encoders[0].spec.key]}
    return Embedding(name=word, vectors=vectors)


def with_norm_bias(model, dtype=torch.float32):
    """A copy of an SD 1.x model whose text encoder output has a mean of about 0.1, as real models have.

    The tiny encoders' final layer norm has bias 0, so their output averages to ~1e-9 and A1111's mean ratio
    would be a ratio of rounding errors.
    """
    encoder = model.encoders[0]
    text_model = copy.deepcopy(encoder.model)
    with torch.no_grad():
        text_model.final_layer_norm.bias.fill_(0.1)
    return dataclasses.replace(model, encoders=[dataclasses.replace(encoder, model=text_model.to(dtype))])
