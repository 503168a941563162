"""Measurements the pre-training recipe logs: the VAE seen through the judge, and the private tokens' reach."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL

from oneword.models.base import BaseModel
from oneword.toy.data import encode_latents, render_dataset
from oneword.toy.world import HIDDEN_SHAPES


@torch.no_grad()
def reconstruction_agreement(vae: AutoencoderKL, judge, n: int = 500, seed: int = 999) -> dict[str, float]:
    """How often the judge reads each factor of fresh renders correctly after a trip through the VAE."""
    from oneword.toy.judge import FACTORS

    images, scenes = render_dataset(n, seed)
    latents = encode_latents(vae, images)
    decoded = torch.cat([vae.decode(latents[i : i + 100]).sample for i in range(0, n, 100)])
    pixels = ((decoded.clamp(-1, 1) + 1) / 2)  # (n, 3, 64, 64) in [0, 1], as `to_tensor` gives
    logits = judge(pixels)
    return {
        factor: sum(values[int(i)] == getattr(s, factor) for i, s in zip(logits[factor].argmax(1), scenes)) / n
        for factor, values in FACTORS.items()
    }


def private_rates(model: BaseModel, judge, rc) -> dict[str, float]:
    """How often "a photo of X" is judged as each hidden shape, X standing for the shape's private token.

    What an embedding that found the row exactly would draw (Textual Inversion can do better: it optimises the
    vector for the finished model). Only meaningful while the private rows exist (during `train_diffusion`).
    """
    from oneword.embeddings.embedding import Embedding
    from oneword.toy.concepts import CONCEPTS
    from oneword.toy.report import concept_rate

    table = model.encoders[0].model.get_input_embeddings().weight
    vocab = len(model.encoders[0].tokenizer)
    rates = {}
    for i, shape in enumerate(HIDDEN_SHAPES):
        if vocab + i >= len(table):
            break
        name = f"private-{shape}"
        embedding = Embedding(name, {"*": table[vocab + i : vocab + i + 1].detach().float().clone()})
        rates[name], _ = concept_rate(model, judge, CONCEPTS[shape], f"a photo of {name}", rc, rc.seed + 70000,
                                      {name: embedding})
    return rates
