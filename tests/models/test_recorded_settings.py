"""A single file of a model whose settings its weights cannot show (the toy model: 4 VAE norm groups, its own
attention heads, latent scale 1): recorded in the `.safetensors` metadata, read back, refused where unknown."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

import oneword
from oneword.errors import OnewordError
from oneword.generate.config import GenerateConfig
from oneword.generate.txt2img import generate
from oneword.models.export import save_single_file
from oneword.toy.bundle import load_toy

METADATA_KEY = "oneword.config"
"""The metadata entry that records the settings (docs/formats.md)."""


@pytest.fixture(scope="module")
def toy():
    """The bundled toy model (CPU, float32)."""
    return load_toy()[0]


@pytest.fixture
def toy_file(toy, tmp_path):
    """The toy model exported as one `.safetensors`: (path, its metadata)."""
    path = tmp_path / "toy.safetensors"
    save_single_file(toy, path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return path, dict(f.metadata())


def _rewrite(path, metadata, out):
    save_file(load_file(path), out, metadata=metadata)
    return out


def test_the_toy_model_exported_loads_back_and_draws_the_same_pixels(toy, toy_file):
    path, metadata = toy_file
    assert json.loads(metadata[METADATA_KEY])["vae"] == {"norm_num_groups": 4, "scaling_factor": 1.0, "act_fn": "silu"}
    loaded = oneword.load_base(path)
    assert loaded.vae.config.norm_num_groups == 4 and loaded.vae.config.mid_block_add_attention is False
    assert list(loaded.unet.config.attention_head_dim) == [2, 4, 4]
    assert loaded.encoders[0].model.config.num_attention_heads == 2
    config = GenerateConfig(prompt="a red star", negative="blue", seed=3, steps=3, sampler="euler")
    drawn = [np.asarray(generate(model, config)[0].image) for model in (toy, loaded)]
    assert np.array_equal(drawn[0], drawn[1])


def test_a_ckpt_cannot_hold_the_toy_model_and_nothing_is_written(toy, tmp_path):
    with pytest.raises(OnewordError) as error:
        save_single_file(toy, tmp_path / "toy.ckpt")
    assert str(error.value) == (
        f"{tmp_path / 'toy.ckpt'}: a .ckpt cannot record this model's unet attention_head_dim [2, 4, 4], vae "
        "norm_num_groups 4, vae scaling_factor 1.0, text encoder 1 num_attention_heads 2 (its loader would assume "
        "sd1's usual settings); export a .safetensors, which records them")
    assert list(tmp_path.iterdir()) == []


def test_a_file_without_the_record_is_refused_as_an_unknown_architecture(toy_file, tmp_path):
    path, metadata = toy_file
    bare = _rewrite(path, {k: v for k, v in metadata.items() if k != METADATA_KEY}, tmp_path / "bare.safetensors")
    with pytest.raises(OnewordError) as error:
        oneword.load_base(bare)
    assert str(error.value) == (
        f"{bare}: unknown architecture: its weights do not build a model with sd1's usual settings (the file records "
        "none) (num_channels (16) must be divisible by num_groups (32))")


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["vae"].update(norm_num_groups=0), "vae.norm_num_groups = 0 is out of range"),
    (lambda r: r["unet"].update(cross_attention_dim=10**9), "unknown setting unet.cross_attention_dim"),
    (lambda r: r["text_encoders"][0].update(hidden_act="os.system"), "hidden_act = 'os.system' is out of range"),
    (lambda r: r["vae"].update(norm_num_groups=3), "unknown architecture: its weights do not build a model with its "
                                                   "recorded settings"),
])
def test_a_malformed_record_is_refused_naming_the_setting(toy_file, tmp_path, change, message):
    path, metadata = toy_file
    record = json.loads(metadata[METADATA_KEY])
    change(record)
    edited = _rewrite(path, {**metadata, METADATA_KEY: json.dumps(record)}, tmp_path / "edited.safetensors")
    with pytest.raises(OnewordError) as error:
        oneword.load_base(edited)
    assert str(error.value).startswith(f"{edited}: ") and message in str(error.value)
