"""`oneword inspect`: each kind of file told apart with its architecture, sizes, words and metadata, the tools that
load it as it is, `--convert` writing what a tool needs, and a hostile pickle reported without running it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from cli_helpers import run_in_process
from safetensors import safe_open
from safetensors.torch import save_file

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import load_embedding_file, save_embedding
from oneword.inspect.convert import convert
from oneword.inspect.describe import inspect_file
from oneword.inspect.tools import support
from oneword.lora.network import Lora, LoraLayer
from oneword.lora.read import read_lora
from oneword.lora.write import save_lora

K = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"  # SD 1.x: Linear 768 -> 320
TE = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
CONV = "lora_unet_down_blocks_0_resnets_0_conv1"


def _t(*shape):
    return torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape))) * 0.1


def _loads(found):
    return {tool: ok for tool, ok, _ in support(found)}


def _sd1_lora(**extra):
    layers = {K: LoraLayer(_t(8, 768), _t(320, 8), 4.0), TE: LoraLayer(_t(8, 768), _t(768, 8), 4.0), **extra}
    return Lora("face", layers)


def test_an_a1111_embedding_is_told_with_its_width_vectors_steps_and_word(tmp_path):
    save_embedding(Embedding("mychar", {"*": _t(3, 768)}, step=1500, sd_checkpoint="a1b2c3d4",
                             sd_checkpoint_name="v1-5"), tmp_path / "mychar.pt")
    found = inspect_file(tmp_path / "mychar.pt")
    assert (found.what, found.architecture, found.words, found.safe) == ("embedding", "SD 1.x (width 768)",
                                                                         ["mychar"], True)
    assert found.facts == [("vectors", "3"), ("steps", "1500"), ("base model", "v1-5"), ("base model hash", "a1b2c3d4")]
    assert _loads(found) == dict.fromkeys(("oneword", "A1111", "ComfyUI", "diffusers", "kohya"), True)
    assert convert(found, "comfyui", tmp_path / "out") == []  # nothing to convert


def test_an_sdxl_embedding_is_split_per_encoder_for_diffusers(tmp_path):
    save_embedding(Embedding("xl", {"clip_l": _t(2, 768), "clip_g": _t(2, 1280)}), tmp_path / "xl.safetensors")
    found = inspect_file(tmp_path / "xl.safetensors")
    assert found.architecture == "SDXL (clip_l 768 + clip_g 1280)"
    assert _loads(found)["diffusers"] is False and _loads(found)["A1111"] is True
    written = convert(found, "diffusers", tmp_path / "out")
    assert [p.name for p, _ in written] == ["xl.clip_l.safetensors", "xl.clip_g.safetensors"]
    with safe_open(str(written[1][0]), framework="pt") as f:
        assert list(f.keys()) == ["xl"] and f.get_tensor("xl").shape == (2, 1280)  # one tensor, as diffusers loads


def test_a_kohya_lora_locon_loha_lokr_and_peft_file_are_told_apart(tmp_path):
    save_lora(_sd1_lora(), tmp_path / "lora.safetensors", {"ss_steps": "900", "ss_sd_model_name": "v1-5"})
    found = inspect_file(tmp_path / "lora.safetensors")
    assert (found.what, found.architecture) == ("LoRA", "SD 1.x (context width 768)")
    assert found.facts[:3] == [("layers", "2 (UNet, text encoder)"), ("rank", "8"), ("alpha", "4")]
    assert ("steps", "900") in found.facts and ("base model", "v1-5") in found.facts
    assert all(_loads(found).values())
    save_lora(_sd1_lora(**{CONV: LoraLayer(_t(4, 320, 3, 3), _t(320, 4, 1, 1), 2.0)}), tmp_path / "locon.safetensors",
              {})
    assert inspect_file(tmp_path / "locon.safetensors").what == "LoCon"
    save_file({f"{K}.hada_w1_a": _t(320, 4), f"{K}.hada_w1_b": _t(4, 768), f"{K}.hada_w2_a": _t(320, 4),
               f"{K}.hada_w2_b": _t(4, 768), f"{K}.alpha": torch.tensor(4.0)}, str(tmp_path / "loha.safetensors"))
    loha = inspect_file(tmp_path / "loha.safetensors")
    assert loha.what == "LoHa" and _loads(loha) == {"oneword": True, "A1111": True, "ComfyUI": True,
                                                    "diffusers": False, "kohya": False}
    with pytest.raises(Exception, match="a LoHa cannot be converted for diffusers: load_lora_weights reads "
                                        "LoRA/LoCon, not LyCORIS's LoHa or LoKr"):
        convert(loha, "diffusers", tmp_path / "out")
    save_file({f"{K}.lokr_w1": _t(4, 4), f"{K}.lokr_w2": _t(80, 192)}, str(tmp_path / "lokr.safetensors"))
    assert inspect_file(tmp_path / "lokr.safetensors").what == "LoKr"
    peft_key = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
    save_file({f"{peft_key}.lora_A.weight": _t(4, 768), f"{peft_key}.lora_B.weight": _t(320, 4)},
              str(tmp_path / "peft.safetensors"))
    peft = inspect_file(tmp_path / "peft.safetensors")
    assert (peft.what, _loads(peft)["A1111"], _loads(peft)["diffusers"]) == ("PEFT LoRA", False, True)
    ((path, _),) = convert(peft, "a1111", tmp_path / "out")
    assert list(read_lora(path).layers) == [K]  # kohya's names, which A1111 matches
    assert torch.allclose(read_lora(path).layers[K].delta(), read_lora(tmp_path / "peft.safetensors").layers[K].delta())


def test_a_bundle_is_told_and_converted_into_the_lora_and_its_words(tmp_path, monkeypatch, capsys):
    bundle = _sd1_lora()
    bundle.embeddings = {"zqx": Embedding("zqx", {"*": _t(2, 768)})}
    save_lora(bundle, tmp_path / "pivot.safetensors", {"ss_steps": "300"})
    code, out, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "pivot.safetensors"),
                                    "--convert", "comfyui", "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "  what: bundle (LoRA + 1 embedding)\n" in out and "  trigger words: zqx\n" in out
    assert "  bundled word zqx: 2 vectors, SD 1.x (width 768), A1111's layout (string_to_param.*)\n" in out
    assert "    A1111      yes  in models/Lora; <lora:NAME:WEIGHT> brings the words zqx" in out
    assert "    ComfyUI    no   the LoRA loads but its loader skips the bundled words" in out
    assert f"wrote {tmp_path / 'out' / 'pivot.safetensors'}: LoRA without the bundled words (1 left out)\n" in out
    with safe_open(str(tmp_path / "out" / "pivot.safetensors"), framework="pt") as f:
        assert not any(k.startswith("bundle_emb.") for k in f.keys()) and f.metadata()["ss_steps"] == "300"  # noqa: SIM118
    assert torch.equal(load_embedding_file(tmp_path / "out" / "zqx.safetensors").vectors["*"],
                       bundle.embeddings["zqx"].vectors["*"])


def test_a_hypernetwork_in_safetensors_is_converted_to_a1111s_pt(tmp_path):
    from oneword.hypernetworks.formats import load_hypernetwork, save_hypernetwork
    from oneword.hypernetworks.hypernetwork import HypernetworkSettings, new_hypernetwork

    save_hypernetwork(new_hypernetwork("style", [768, 320], HypernetworkSettings()), tmp_path / "style.safetensors")
    found = inspect_file(tmp_path / "style.safetensors")
    assert (found.what, found.architecture) == ("hypernetwork", "SD 1.x (widths 320, 768)")
    assert _loads(found) == {"oneword": True, "A1111": False, "ComfyUI": False, "diffusers": False, "kohya": False}
    ((path, _),) = convert(found, "a1111", tmp_path / "out")
    assert path.name == "style.pt" and load_hypernetwork(path).widths == [320, 768]


def test_a_base_model_is_told_with_its_architecture(tiny_sd1, tmp_path):
    from oneword.models.export import save_single_file

    save_single_file(tiny_sd1, tmp_path / "model.safetensors")
    found = inspect_file(tmp_path / "model.safetensors")
    assert (found.what, found.architecture) == ("base model", "SD 1.x") and all(_loads(found).values())


def test_a_hostile_pickle_is_reported_as_unsafe_without_running_it(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"string_to_param": {"*": Payload()}}, tmp_path / "evil.pt")
    code, out, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "evil.pt"))
    assert code == 0, err
    assert "  what: unknown\n  safety: unsafe: loading it would run code from the file (it asks for posix.system)" in out
    assert "    A1111      no   it would run code on loading (refused without loading it)" in out
    code, out, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "evil.pt"), "--convert", "a1111",
                                    "--out", str(tmp_path / "out"))
    assert (code, err) == (1, f"error: {tmp_path / 'evil.pt'}: not converted: it would run code on loading\n")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_convert_needs_out_and_a_known_tool(tmp_path, monkeypatch, capsys):
    save_embedding(Embedding("mychar", {"*": _t(1, 768)}), tmp_path / "mychar.pt")
    code, _, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "mychar.pt"), "--convert", "a1111")
    assert (code, err) == (1, "error: --convert needs --out DIR, the folder the converted files go to\n")
    code, _, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "mychar.pt"), "--convert", "invoke",
                                  "--out", str(tmp_path))
    assert (code, err) == (1, "error: --convert must be one of a1111, comfyui, diffusers, kohya, not 'invoke'\n")


def test_a_file_no_reader_takes_is_unknown_with_the_reasons(tmp_path):
    save_file({"weight": torch.ones(3, 3), "other": torch.ones(2)}, str(tmp_path / "what.safetensors"))
    found = inspect_file(Path(tmp_path / "what.safetensors"))
    assert found.what == "unknown" and "not a LoRA" in found.problem and not any(_loads(found).values())
