"""oneword's prompt encoding next to diffusers' own after `load_textual_inversion`, for the tests of both."""

from __future__ import annotations

import copy
import dataclasses
from importlib import resources

import torch
from transformers import CLIPTokenizer

from oneword.conditioning.encode import encode_prompt
from oneword.embeddings.formats import load_embedding_file
from oneword.models.pipeline import make_pipeline

EOS = 49407


def _fresh_tokenizer(pad_token: str) -> CLIPTokenizer:
    folder = resources.files("oneword.data.tokenizer")
    return CLIPTokenizer(vocab=str(folder.joinpath("vocab.json")), merges=str(folder.joinpath("merges.txt")),
                         pad_token=pad_token, model_max_length=77)


def _diffusers_encoding(model, prompt: str, word: str, load) -> tuple[torch.Tensor, torch.Tensor | None]:
    """diffusers' encoding of `prompt` after `load(pipe)` registered the embedding, on copies of the encoders."""
    encoders = [dataclasses.replace(e, model=copy.deepcopy(e.model), tokenizer=_fresh_tokenizer(e.spec.pad_token))
                for e in model.encoders]
    pipe = make_pipeline(dataclasses.replace(model, encoders=encoders))
    load(pipe)
    if model.is_sdxl:
        pipe.text_encoder_2.text_model.eos_token_id = EOS  # pooled at the EOS, not at argmax(ids)
        context, _, pooled, _ = pipe.encode_prompt(prompt=prompt, device="cpu", num_images_per_prompt=1,
                                                   do_classifier_free_guidance=False)
        return context, pooled
    context, _ = pipe.encode_prompt(prompt, "cpu", 1, False)
    return context, None


def assert_same_as_diffusers(model, prompt, word, path, load):
    """The file at `path` encodes `prompt` in oneword as diffusers does after `load(pipe)`."""
    emb = load_embedding_file(path)
    ours = encode_prompt(model, prompt, {word: dataclasses.replace(emb, name=word)})
    context, pooled = _diffusers_encoding(model, prompt, word, load)
    assert ours.context.shape == context.shape
    assert torch.allclose(ours.context, context, atol=1e-5), path.name
    if pooled is not None:
        assert torch.allclose(ours.pooled, pooled, atol=1e-5), path.name
