"""A LoRA file that cannot be used is refused with one line naming it and why, and in a folder it is left out
without stopping anything: wrong shapes, NaN, a cut file, a pickle that would run code, a file that is no LoRA."""

from __future__ import annotations

import pytest
import torch
from lora_helpers import random_lora
from safetensors.torch import save_file

from oneword.errors import OnewordError
from oneword.lora.fit import fit
from oneword.lora.library import LoraLibrary
from oneword.lora.read import read_lora
from oneword.lora.write import save_lora

Q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"  # SD 1.x tiny: Linear 32 -> 32
K = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k"


class _Marker:
    """Unpickling this would create a file: what a malicious pickle does."""

    def __init__(self, path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def bad_files(folder, model) -> dict[str, str]:
    """Write one file of each kind of trouble into `folder`; name -> the line it must be refused with."""
    folder.mkdir(parents=True, exist_ok=True)
    good = random_lora(model, "good")
    save_lora(good, folder / "good.safetensors", {})
    data = (folder / "good.safetensors").read_bytes()
    (folder / "cut.safetensors").write_bytes(data[: len(data) // 2])
    nan = {f"{Q}.lora_down.weight": torch.full((4, 32), float("nan")), f"{Q}.lora_up.weight": torch.zeros(32, 4)}
    save_file(nan, str(folder / "nan.safetensors"))
    save_file({"model.diffusion_model.out.2.weight": torch.ones(3)}, str(folder / "checkpoint.safetensors"))
    torch.save({f"{Q}.lora_down.weight": _Marker(folder / "pwned")}, folder / "code.pt")
    (folder / "text.ckpt").write_text("not a pickle")
    return {
        "cut": f"{folder / 'cut.safetensors'}: not a readable safetensors file (",
        "nan": f"{folder / 'nan.safetensors'}: not usable: {Q}.lora_down.weight holds NaN or infinite values",
        "checkpoint": f"{folder / 'checkpoint.safetensors'}: not a LoRA (no lora_down/lora_up, hada_, lokr_ or "
                      "lora_A/lora_B weights)",
        "code": f"{folder / 'code.pt'}: refused: loading it would run code from the file (it asks for io.open)",
        "text": f"{folder / 'text.ckpt'}: not a readable PyTorch file",
    }


def test_each_bad_file_is_refused_with_one_line_naming_it(tiny_sd1, tmp_path):
    for name, line in bad_files(tmp_path, tiny_sd1).items():
        path = next(tmp_path.glob(f"{name}.*"))
        with pytest.raises(OnewordError) as refused:
            read_lora(path)
        message = str(refused.value)
        assert message.startswith(line) and "\n" not in message, (name, message)
    assert not (tmp_path / "pwned").exists()


def test_in_a_folder_each_bad_file_is_one_note_and_the_good_one_loads(tiny_sd1, tmp_path):
    lines = bad_files(tmp_path, tiny_sd1)
    library = LoraLibrary.scan(tmp_path)
    assert library.names() == ["checkpoint", "code", "cut", "good", "nan", "text"]
    assert library.get("good").lora.name == "good"
    for name in lines:
        assert library.get(name) is None
    assert len(library.notes) == len(lines)
    for note, (name, line) in zip(library.notes, lines.items(), strict=True):
        assert note.startswith(f"<lora:{name}>: {line}") and note.endswith("; left out"), note
    assert library.get("Good") is not None and library.get("none") is None  # by stem, in any case
    assert library.notes[-1] == ("<lora:none>: no such LoRA in " + str(tmp_path) +
                                 " (it has: checkpoint, code, cut, good, nan, text); left out")


def test_layers_of_the_wrong_shape_or_incomplete_are_left_out_the_rest_applies(tiny_sd1, tmp_path):
    v = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_v"
    save_file({f"{Q}.lora_down.weight": torch.ones(4, 48), f"{Q}.lora_up.weight": torch.ones(32, 4),  # in 48, not 32
               f"{K}.lora_down.weight": torch.ones(4, 32),  # no up
               f"{v}.lora_down.weight": torch.ones(4, 32), f"{v}.lora_up.weight": torch.ones(32, 4),
               "lora_unet_nowhere.lora_down.weight": torch.ones(4, 32),
               "lora_unet_nowhere.lora_up.weight": torch.ones(32, 4)}, str(tmp_path / "mixed.safetensors"))
    fitted = fit(read_lora(tmp_path / "mixed.safetensors"), tiny_sd1)
    assert [place.key for place, _ in fitted.layers] == [v]
    assert fitted.notes("mixed") == [
        "lora mixed: 1 layer skipped: has no lora_up weight (e.g. " + K + ")",
        "lora mixed: 1 layer skipped: its shape does not fit the model's layer (e.g. " + Q + ": 32x48, the layer "
        "32x32)",
        "lora mixed: 1 layer skipped: no such layer in tiny-sd1 (e.g. lora_unet_nowhere)",
    ]


def test_a_plain_pt_lora_is_read_as_tensors(tiny_sd1, tmp_path):
    lora = random_lora(tiny_sd1, "pt")
    tensors = {}
    for key, layer in lora.layers.items():
        tensors |= {f"{key}.lora_down.weight": layer.down, f"{key}.lora_up.weight": layer.up,
                    f"{key}.alpha": torch.tensor(layer.alpha)}
    torch.save(tensors, tmp_path / "pt.pt")
    back = read_lora(tmp_path / "pt.pt")
    assert sorted(back.layers) == sorted(lora.layers)
    assert torch.equal(back.layers[Q].down, lora.layers[Q].down) and back.layers[Q].alpha == lora.layers[Q].alpha


def test_a_bundle_s_embeddings_are_read_as_a1111_reads_them_and_other_parts_named(tiny_sd1, tmp_path):
    vectors = torch.arange(128.0).reshape(2, 64)
    save_file({f"{Q}.lora_down.weight": torch.ones(4, 32), f"{Q}.lora_up.weight": torch.ones(32, 4),
               "bundle_emb.mychar.string_to_param.*": vectors.half(), "bundle_emb.xl.clip_l": torch.ones(1, 768),
               "bundle_emb.xl.clip_g": torch.ones(1, 1280), "bundle_emb.out.clip_l_out": torch.ones(1, 768)},
              str(tmp_path / "bundle.safetensors"), {"ss_steps": "12"})
    lora = read_lora(tmp_path / "bundle.safetensors")
    assert sorted(lora.embeddings) == ["mychar", "xl"]
    assert torch.equal(lora.embeddings["mychar"].vectors["*"], vectors) and lora.embeddings["mychar"].step == 12
    assert lora.embeddings["mychar"].vectors["*"].dtype == torch.float32
    assert {k: v.shape for k, v in lora.embeddings["xl"].vectors.items()} == {"clip_l": (1, 768), "clip_g": (1, 1280)}
    assert lora.token_vectors() == lora.embeddings
    fitted = fit(lora, tiny_sd1)
    assert [place.key for place, _ in fitted.layers] == [Q]
    assert fitted.notes("bundle") == [
        "lora bundle: 1 layer skipped: a bundled embedding of parts clip_l_out, which oneword does not read (it "
        "reads string_to_param.*, clip_l, or clip_l and clip_g) (e.g. bundle_emb.out)"]
