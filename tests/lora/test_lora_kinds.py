"""LyCORIS LoHa and LoKr, diffusers/PEFT and diffusers' older processor files, each built here tensor by tensor, change
their layer's output by exactly the weight change their format defines (computed here by hand)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from oneword.lora.apply import loras_applied
from oneword.lora.names import places
from oneword.lora.read import lora_kind, read_layout, read_lora

Q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"  # SD 1.x tiny: Linear 32 -> 32
CONV = "lora_unet_down_blocks_0_resnets_0_conv1"  # Conv2d 32 -> 32, 3x3
TE_Q = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"  # Linear 64 -> 64


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 0.3


def assert_changes_by(model, lora, key: str, delta: torch.Tensor, multiplier: float = 0.7) -> None:
    """Under the LoRA at `multiplier`, the module of `key` computes with W + multiplier * delta."""
    module = places(model)[key].module
    weight = module.weight + multiplier * delta.reshape(module.weight.shape)
    if isinstance(module, torch.nn.Conv2d):
        x = _randn(1, module.in_channels, 8, 8, seed=5)
        expected = F.conv2d(x, weight, module.bias, module.stride, module.padding)
    else:
        x = _randn(2, 7, module.in_features, seed=5)
        expected = F.linear(x, weight, module.bias)
    with torch.no_grad(), loras_applied(model, [(lora, multiplier, multiplier)]) as notes:
        got = module(x)
    assert notes == []
    assert (got - module(x)).abs().max() > 1e-3  # it changes the output
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_loha_linear_and_tucker_conv(tiny_sd1, tmp_path):
    w = {name: _randn(*shape, seed=i) for i, (name, shape) in enumerate(
        [("a1", (32, 4)), ("b1", (4, 32)), ("a2", (32, 4)), ("b2", (4, 32)),  # Linear: [out, r] @ [r, in]
         ("ta", (4, 32)), ("tb", (4, 32)), ("t1", (4, 4, 3, 3)),  # Tucker: wa [r, out], wb [r, in], t [r, r, k, k]
         ("ua", (4, 32)), ("ub", (4, 32)), ("t2", (4, 4, 3, 3))])}
    tensors = {f"{Q}.hada_w1_a": w["a1"], f"{Q}.hada_w1_b": w["b1"], f"{Q}.hada_w2_a": w["a2"],
               f"{Q}.hada_w2_b": w["b2"], f"{Q}.alpha": torch.tensor(2.0),
               f"{CONV}.hada_w1_a": w["ta"], f"{CONV}.hada_w1_b": w["tb"], f"{CONV}.hada_t1": w["t1"],
               f"{CONV}.hada_w2_a": w["ua"], f"{CONV}.hada_w2_b": w["ub"], f"{CONV}.hada_t2": w["t2"]}
    save_file(tensors, str(tmp_path / "loha.safetensors"))
    lora, layout = read_layout(tmp_path / "loha.safetensors")
    assert lora_kind(lora, layout) == "LoHa"
    assert_changes_by(tiny_sd1, lora, Q, (w["a1"] @ w["b1"]) * (w["a2"] @ w["b2"]) * 2.0 / 4)
    # Tucker: delta[o, i, k, l] = sum over a, b of t[a, b, k, l] * wa[a, o] * wb[b, i]; no alpha key: alpha = rank
    first = torch.einsum("abkl,ao,bi->oikl", w["t1"], w["ta"], w["tb"])
    second = torch.einsum("abkl,ao,bi->oikl", w["t2"], w["ua"], w["ub"])
    assert_changes_by(tiny_sd1, lora, CONV, first * second)


def _kron(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """kron by its definition: block (a, c) of the result is w1[a, c] * w2."""
    blocks = torch.einsum("ac,bd...->abcd...", w1, w2)
    o1, o2, i1, i2 = blocks.shape[:4]
    return blocks.reshape(o1 * o2, i1 * i2, *w2.shape[2:])


@pytest.mark.parametrize("factoring", ["w2 factored", "w1 factored", "both whole", "conv whole", "conv tucker"])
def test_lokr_in_each_factoring(tiny_sd1, tmp_path, factoring):
    w1, w1a, w1b = _randn(4, 4, seed=1), _randn(4, 2, seed=2), _randn(2, 4, seed=3)
    w2, w2a, w2b = _randn(8, 8, seed=4), _randn(8, 2, seed=5), _randn(2, 8, seed=6)
    key, alpha = (CONV, 3.0) if factoring.startswith("conv") else (Q, 3.0)
    parts = {
        "w2 factored": ({"lokr_w1": w1, "lokr_w2_a": w2a, "lokr_w2_b": w2b}, _kron(w1, w2a @ w2b) * alpha / 2),
        "w1 factored": ({"lokr_w1_a": w1a, "lokr_w1_b": w1b, "lokr_w2": w2}, _kron(w1a @ w1b, w2) * alpha / 2),
        "both whole": ({"lokr_w1": w1, "lokr_w2": w2}, _kron(w1, w2)),  # no factor: scale 1 whatever alpha says
    }
    conv_w2, t2, ta, tb = _randn(8, 8, 3, 3, seed=7), _randn(2, 2, 3, 3, seed=8), _randn(2, 8, seed=9), _randn(2, 8,
                                                                                                           seed=10)
    parts["conv whole"] = ({"lokr_w1": w1, "lokr_w2": conv_w2}, _kron(w1, conv_w2))
    parts["conv tucker"] = ({"lokr_w1": w1, "lokr_w2_a": ta, "lokr_w2_b": tb, "lokr_t2": t2},
                            _kron(w1, torch.einsum("abkl,ao,bi->oikl", t2, ta, tb)) * alpha / 2)
    tensors, delta = parts[factoring]
    save_file({**{f"{key}.{k}": v for k, v in tensors.items()}, f"{key}.alpha": torch.tensor(alpha)},
              str(tmp_path / "lokr.safetensors"))
    lora, layout = read_layout(tmp_path / "lokr.safetensors")
    assert lora_kind(lora, layout) == "LoKr"
    assert_changes_by(tiny_sd1, lora, key, delta)


def test_peft_and_old_diffusers_files_on_sd1(tiny_sd1, tmp_path):
    a, b, ta, tb = _randn(4, 32, seed=1), _randn(32, 4, seed=2), _randn(2, 64, seed=3), _randn(64, 2, seed=4)
    q = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    te = "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"
    metadata = {"unet.r": 4, "unet.lora_alpha": 8, "text_encoder.r": 2, "text_encoder.lora_alpha": 1}
    save_file({f"{q}.lora_A.weight": a, f"{q}.lora_B.weight": b, f"{te}.lora_A.weight": ta,
               f"{te}.lora_B.weight": tb}, str(tmp_path / "peft.safetensors"),
              {"format": "pt", "lora_adapter_metadata": json.dumps(metadata)})
    lora, layout = read_layout(tmp_path / "peft.safetensors")
    assert (lora_kind(lora, layout), sorted(lora.layers)) == ("PEFT", sorted([Q, TE_Q]))
    assert_changes_by(tiny_sd1, lora, Q, b @ a * 8 / 4)
    assert_changes_by(tiny_sd1, lora, TE_Q, tb @ ta * 1 / 2)
    # diffusers' attention-processor layout, no metadata: alpha = rank (scale 1)
    out = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora"
    save_file({f"{out}.down.weight": a, f"{out}.up.weight": b}, str(tmp_path / "old.bin.safetensors"))
    old = read_lora(tmp_path / "old.bin.safetensors")
    assert_changes_by(tiny_sd1, old, Q.replace("to_q", "to_out_0"), b @ a)


def test_peft_on_sdxl_finds_the_sgm_named_layers(tiny_models, tmp_path):
    model = tiny_models("sdxl")
    a, b = _randn(4, 192, seed=1), _randn(128, 4, seed=2)  # attn2.to_v: the 192-wide context -> 128
    fa, fb = _randn(4, 128, seed=3), _randn(256, 4, seed=4)  # bigG's fc1: 128 -> 256
    unet = "unet.down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_v"  # kohya: input_blocks_3_1_...
    te2 = "text_encoder_2.text_model.encoder.layers.1.mlp.fc1"
    save_file({f"{unet}.lora_A.weight": a, f"{unet}.lora_B.weight": b, f"{te2}.lora_A.weight": fa,
               f"{te2}.lora_B.weight": fb}, str(tmp_path / "xl.safetensors"))
    lora = read_lora(tmp_path / "xl.safetensors")
    assert_changes_by(model, lora, "lora_unet_input_blocks_3_1_transformer_blocks_1_attn2_to_v", b @ a)
    assert_changes_by(model, lora, "lora_te2_text_model_encoder_layers_1_mlp_fc1", fb @ fa)


def test_locon_with_a_tucker_core(tiny_sd1, tmp_path):
    down, mid, up = _randn(4, 32, 1, 1, seed=1), _randn(4, 4, 3, 3, seed=2), _randn(32, 4, 1, 1, seed=3)
    save_file({f"{CONV}.lora_down.weight": down, f"{CONV}.lora_mid.weight": mid, f"{CONV}.lora_up.weight": up,
               f"{CONV}.alpha": torch.tensor(2.0)}, str(tmp_path / "cp.safetensors"))
    lora, layout = read_layout(tmp_path / "cp.safetensors")
    assert lora_kind(lora, layout) == "LoCon"
    # delta[o, i, k, l] = sum over a, b of up[o, a] * mid[a, b, k, l] * down[b, i], times alpha / rank
    kernel = torch.einsum("oa,abkl,bi->oikl", up.flatten(1), mid, down.flatten(1))
    assert_changes_by(tiny_sd1, lora, CONV, kernel * 2.0 / 4)
