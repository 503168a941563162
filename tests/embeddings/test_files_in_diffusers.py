"""Embedding files, read by oneword and by diffusers' own load_textual_inversion, encode prompts alike.

Both directions of compatibility: files oneword writes, and files in each producer's layout built here.
"""

from __future__ import annotations

import pytest
import torch
from diffusers_parity import assert_same_as_diffusers as _assert_same
from safetensors.torch import save_file

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import load_embedding_file, save_embedding


def _vectors(n: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed)) * 0.5


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("n", [1, 3])
def test_files_oneword_writes_encode_the_same_in_diffusers(tmp_path, tiny_sd1, suffix, n):
    path = tmp_path / f"mychar{suffix}"
    save_embedding(Embedding(name="mychar", vectors={"*": _vectors(n, 64, n)}, step=500), path, model=tiny_sd1)
    _assert_same(tiny_sd1, "a photo of mychar, smiling", "mychar", path,
                 lambda pipe: pipe.load_textual_inversion(str(path), token="mychar"))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_sdxl_files_oneword_writes_encode_the_same_in_diffusers(tmp_path, tiny_models, suffix):
    model = tiny_models("sdxl")
    emb = Embedding(name="mychar", vectors={"clip_l": _vectors(2, 64, 1), "clip_g": _vectors(2, 128, 2)})
    path = tmp_path / f"mychar{suffix}"
    save_embedding(emb, path)

    def load(pipe):
        # diffusers' documented SDXL recipe: one call per encoder with the clip_l / clip_g tensors of the file
        state = load_embedding_file(path).vectors
        pipe.load_textual_inversion(state["clip_l"], token="mychar", text_encoder=pipe.text_encoder,
                                    tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(state["clip_g"], token="mychar", text_encoder=pipe.text_encoder_2,
                                    tokenizer=pipe.tokenizer_2)

    _assert_same(model, "a photo of mychar", "mychar", path, load)


def _a1111_pt(path, vectors):
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vectors}, "name": "mychar", "step": 1000,
                "sd_checkpoint": "abcdef1234", "sd_checkpoint_name": "v1-5"}, path)


PRODUCERS = {
    "a1111.pt": _a1111_pt,
    "learned_embeds.bin": lambda path, v: torch.save({"<mychar>": v}, path),
    "learned_embeds_1d.bin": lambda path, v: torch.save({"<mychar>": v[0]}, path),
    "learned_embeds.safetensors": lambda path, v: save_file({"<mychar>": v.contiguous()}, str(path)),
    "kohya.safetensors": lambda path, v: save_file({"emb_params": v.contiguous()}, str(path)),
    "kohya.pt": lambda path, v: torch.save({"emb_params": v}, path),
    "onetrainer.safetensors": lambda path, v: save_file({"emp_params": v.contiguous()}, str(path)),
}


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_files_of_every_producer_encode_the_same_in_oneword_and_diffusers(tmp_path, tiny_models, producer):
    for kind in ("sd1", "sd2"):
        model = tiny_models(kind)
        path = tmp_path / kind / producer
        path.parent.mkdir()
        PRODUCERS[producer](path, _vectors(2, 64, len(producer)))
        _assert_same(model, "a photo of mychar on a beach", "mychar", path,
                     lambda pipe: pipe.load_textual_inversion(str(path), token="mychar"))


def test_sdxl_onetrainer_file_encodes_the_same(tmp_path, tiny_models):
    model = tiny_models("sdxl")
    path = tmp_path / "onetrainer-xl.safetensors"
    tensors = {"clip_l": _vectors(3, 64, 5), "clip_g": _vectors(3, 128, 6), "clip_l_out": _vectors(3, 64, 7)}
    save_file(tensors, str(path))

    def load(pipe):
        pipe.load_textual_inversion(tensors["clip_l"], token="mychar", text_encoder=pipe.text_encoder,
                                    tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(tensors["clip_g"], token="mychar", text_encoder=pipe.text_encoder_2,
                                    tokenizer=pipe.tokenizer_2)

    _assert_same(model, "mychar in a forest", "mychar", path, load)
