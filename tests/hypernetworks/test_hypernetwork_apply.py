"""Applying hypernetworks: A1111's math in the attention layers, strength 0 is no hypernetwork bit for bit,
prompt tags, and the `oneword generate` / `create-hypernetwork` commands."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from cli_helpers import run_in_process
from hypernetwork_helpers import a1111_file
from PIL import Image

from oneword.errors import OnewordError
from oneword.generate.config import GenerateConfig
from oneword.generate.txt2img import generate_latents
from oneword.hypernetworks.apply import hypernetworks_applied
from oneword.hypernetworks.formats import save_hypernetwork
from oneword.hypernetworks.hypernetwork import HypernetworkSettings, new_hypernetwork
from oneword.hypernetworks.library import HypernetworkLibrary, split_tags


def _noisy(widths, seed, scale=0.2, settings=None):
    """A hypernetwork whose MLPs are far from zero (a fresh one barely changes anything)."""
    hn = new_hypernetwork("hx", widths, settings or HypernetworkSettings(activation_func="relu"), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in hn.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return hn


def test_the_attention_context_goes_through_k_and_v_modules_as_in_a1111():
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    attn = Attention(query_dim=32, cross_attention_dim=64, heads=2, dim_head=16).eval()
    x, context = torch.randn(2, 10, 32), torch.randn(2, 7, 64)
    hn = _noisy([64], seed=1)
    with torch.no_grad(), hypernetworks_applied(attn, [(hn, 0.7)]):
        got = attn(x, encoder_hidden_states=context)
    with torch.no_grad():
        module_k, module_v = hn.layers[64]
        k = attn.to_k(context + 0.7 * module_k.linear(context))
        v = attn.to_v(context + 0.7 * module_v.linear(context))
        q = attn.to_q(x)
        heads = lambda t: t.view(2, -1, 2, 16).transpose(1, 2)  # noqa: E731
        weights = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / 4.0, dim=-1)  # 1/sqrt(16)
        expected = attn.to_out[0]((weights @ heads(v)).transpose(1, 2).reshape(2, 10, 32))
    assert torch.allclose(got, expected, atol=1e-5)
    with torch.no_grad():  # restored on exit
        assert torch.equal(attn(x, encoder_hidden_states=context), attn.processor(attn, x, context))
    assert type(attn.processor).__name__ == "AttnProcessor2_0"


@pytest.fixture
def model(tiny_models):
    return tiny_models("sd1")


CONFIG = GenerateConfig(prompt="a red ball", seed=3, steps=3, sampler="euler", batch=2)


def _library(tmp_path, hn):
    save_hypernetwork(hn, tmp_path / "hx.pt")
    return HypernetworkLibrary.scan(tmp_path)


def test_strength_0_is_no_hypernetwork_bit_for_bit_and_strength_1_is_not(tmp_path, model):
    a1111_file(tmp_path / "hx.pt", [32, 64], seed=2, scale=0.2)  # an A1111-layout file built here
    library = HypernetworkLibrary.scan(tmp_path)
    plain = generate_latents(model, CONFIG)
    zero = generate_latents(model, dataclasses.replace(CONFIG, prompt="a red ball <hypernet:hx:0>"), None, library)
    one = generate_latents(model, dataclasses.replace(CONFIG, prompt="a red ball <hypernet:HX>"), None, library)
    half = generate_latents(model, dataclasses.replace(CONFIG, prompt="a red ball <hypernet:hx:0.5>"), None, library)
    assert torch.equal(plain, zero)
    assert (plain - one).abs().max() > 0.05
    assert 0 < (plain - half).abs().max() < (plain - one).abs().max()
    assert torch.equal(generate_latents(model, CONFIG), plain)  # nothing stays applied


def test_self_attention_is_transformed_where_the_hypernetwork_has_its_width(tmp_path, model):
    # tiny SD 1.x: text width 64; self-attention widths 32 (first block) and 64. A 32-only module touches
    # nothing but the first block's self-attention, as in A1111, and still changes the image.
    library = _library(tmp_path, _noisy([32], seed=4))
    plain = generate_latents(model, CONFIG)
    changed = generate_latents(model, dataclasses.replace(CONFIG, prompt="<hypernet:hx:1> a red ball"), None, library)
    assert (plain - changed).abs().max() > 0.01


def test_prompt_tags():
    assert split_tags("a cat <hypernet:anime:0.8>, <hypernet:ink> on grass") == (
        "a cat ,  on grass", [("anime", 0.8), ("ink", 1.0)])
    with pytest.raises(OnewordError, match="strength 'x' is not a number"):
        split_tags("<hypernet:anime:x>")
    with pytest.raises(OnewordError, match="no hypernetwork name"):
        split_tags("<hypernet::1>")


def test_generate_and_create_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in_process(monkeypatch, capsys, "create-hypernetwork", "hx", "--model", "tiny-sd1",
                                    "--activation", "relu")
    assert code == 0 and out.strip().startswith("wrote hypernetworks/hx.pt (modules 32, 64;")
    hn = _noisy([32, 64], seed=5)
    save_hypernetwork(hn, tmp_path / "hypernetworks" / "hx.pt")
    common = ("generate", "--model", "tiny-sd1", "--seed", "7", "--steps", "2", "--out")
    runs = {}
    for label, prompt in (("plain", "a red ball"), ("zero", "a red ball <hypernet:hx:0>"),
                          ("one", "a red ball <hypernet:hx:1>")):
        code, out, err = run_in_process(monkeypatch, capsys, *common, label, "--prompt", prompt)
        assert code == 0, err
        runs[label] = Image.open(out.strip())
    pixels = {k: np.asarray(v) for k, v in runs.items()}
    assert np.array_equal(pixels["plain"], pixels["zero"]) and not np.array_equal(pixels["plain"], pixels["one"])
    assert runs["one"].text["parameters"].startswith("a red ball <hypernet:hx:1>\n")  # the prompt as typed
    code, out, err = run_in_process(monkeypatch, capsys, *common, "x", "--prompt", "a <hypernet:nope:1>")
    assert code == 1 and err.strip().splitlines() == [
        "error: <hypernet:nope>: no such hypernetwork in hypernetworks (it has: hx)"]


@pytest.mark.parametrize("args, message", [
    (("--layer-structure", "2, 2"), "--layer-structure 2, 2: must start and end with 1 (the context width)"),
    (("--layer-structure", "1, a, 1"), "--layer-structure '1, a, 1': not a comma-separated list of numbers"),
    (("--use-dropout", "--dropout-structure", "0, 0.3"),
     "--dropout-structure 0, 0.3: needs one number per layer structure number (3), has 2"),
    (("--use-dropout", "--dropout-structure", "0.1, 0.3, 0"), "--dropout-structure 0.1, 0.3, 0: must start and end with 0"),
    (("--activation", "nope"), "--activation 'nope': unknown"),
    (("--weight-init", "Zeros"), "--weight-init 'Zeros': unknown"),
    (("--modules", "768"), "--modules '768': tiny-sd1 has no attention of these widths; its widths are 32, 64"),
])
def test_malformed_options_name_the_rule_they_break(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in_process(monkeypatch, capsys, "create-hypernetwork", "hx", "--model", "tiny-sd1", *args)
    assert code == 1 and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "hypernetworks" / "hx.pt").exists()
