"""Malformed and costly LoRA files: each is refused with one line naming it and what is wrong (a folder lists the
good file beside it, a prompt leaves it out with a note), no layer's weight change is computed before its shape is
known to fit, values no trained file has are refused, and a file's cost is bounded before its tensors are read."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import run_in_process
from lora_helpers import random_lora
from safetensors.torch import save_file

from oneword.errors import OnewordError
from oneword.lora import read
from oneword.lora.fit import fit
from oneword.lora.library import LoraLibrary
from oneword.lora.lycoris import LokrLayer, apply_weight
from oneword.lora.read import read_lora
from oneword.lora.survey import survey
from oneword.lora.write import save_lora

Q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"  # SD 1.x tiny: Linear 32 -> 32
PQ = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"  # the same layer in diffusers' naming
CONV = "lora_unet_down_blocks_0_resnets_0_conv1"  # SD 1.x tiny: 3x3 convolution 32 -> 32
NO_LAYER = "not usable: no layer can be applied ("


def _pair(rank: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(rank)
    return {f"{Q}.lora_down.weight": torch.randn(rank, 32, generator=generator) * 0.1,
            f"{Q}.lora_up.weight": torch.randn(32, rank, generator=generator) * 0.1}


def _peft(down: torch.Tensor, up: torch.Tensor) -> dict[str, torch.Tensor]:
    return {f"{PQ}.lora_A.weight": down, f"{PQ}.lora_B.weight": up}


MALFORMED = {  # name -> (tensors, header metadata, how the refusal reads after the file's path)
    "alpha-vector": ({**_pair(), f"{Q}.alpha": torch.ones(3)}, {},
                     f"{NO_LAYER}{Q}: alpha has shape [3], not one number)"),
    "rank-0": ({f"{Q}.lora_down.weight": torch.ones(0, 32), f"{Q}.lora_up.weight": torch.ones(32, 0)}, {},
               f"{NO_LAYER}{Q}: lora_down [0, 32] and lora_up [32, 0] do not make a layer)"),
    "up-3x3": ({f"{CONV}.lora_down.weight": torch.ones(4, 32, 3, 3), f"{CONV}.lora_up.weight": torch.ones(32, 4, 3, 3)},
               {}, f"{NO_LAYER}{CONV}: lora_down [4, 32, 3, 3] and lora_up [32, 4, 3, 3] do not make a layer)"),
    "peft-scalar": (_peft(torch.tensor(1.0), torch.ones(32, 4)), {},
                    f"{NO_LAYER}{Q}: lora_A (down) [] and lora_B (up) [32, 4] do not make a layer)"),
    "peft-ranks": (_peft(torch.ones(4, 32), torch.ones(32, 8)), {},
                   f"{NO_LAYER}{Q}: lora_A (down) [4, 32] and lora_B (up) [32, 8] do not make a layer)"),
    "peft-pattern": (_peft(torch.ones(4, 32), torch.ones(32, 4)),
                     {"lora_adapter_metadata": json.dumps({"unet.alpha_pattern": [1, 2]})},
                     "not usable: lora_adapter_metadata: unet.alpha_pattern is a list, not an object of module names "
                     "and alphas"),
    "peft-alpha-text": (_peft(torch.ones(4, 32), torch.ones(32, 4)),
                        {"lora_adapter_metadata": json.dumps({"unet.lora_alpha": "eight"})},
                        "not usable: lora_adapter_metadata: unet.lora_alpha is a string, not a number"),
    "peft-alpha-huge": (_peft(torch.ones(4, 32), torch.ones(32, 4)),
                        {"lora_adapter_metadata": '{"unet.lora_alpha": 1e999}'},
                        "not usable: lora_adapter_metadata: unet.lora_alpha is inf, beyond any LoRA's alpha (usable "
                        "ones stay far below 10000)"),
    "peft-not-json": (_peft(torch.ones(4, 32), torch.ones(32, 4)), {"lora_adapter_metadata": "{unet"},
                      "not usable: lora_adapter_metadata is not JSON"),
    "complex": ({f"{Q}.lora_down.weight": torch.ones(4, 32, dtype=torch.complex64),
                 f"{Q}.lora_up.weight": torch.ones(32, 4)}, {},
                f"not usable: {Q}.lora_down.weight holds complex64 values, not real numbers"),
    "loha-factors": ({f"{Q}.hada_w1_a": torch.ones(32, 4), f"{Q}.hada_w1_b": torch.ones(5, 32),
                      f"{Q}.hada_w2_a": torch.ones(32, 4), f"{Q}.hada_w2_b": torch.ones(4, 32)}, {},
                     f"{NO_LAYER}{Q}: hada_w1_a [32, 4] and hada_w1_b [5, 32] do not multiply)"),
    "lokr-absurd": ({f"{Q}.lokr_w1": torch.ones(100, 100), f"{Q}.lokr_w2": torch.ones(250, 200)}, {},
                    f"{NO_LAYER}{Q}: a weight change of 500000000 numbers, more than any layer of SD 1.x, 2.x or SDXL "
                    f"has (at most {read.MAX_LAYER_NUMBERS} are read))"),
    "huge": ({key: t * 1e37 for key, t in _pair().items()}, {},
             f"not usable: {Q}.lora_down.weight holds values as large as"),
    "huge-alpha": ({**_pair(), f"{Q}.alpha": torch.tensor(3e38)}, {},
                   f"not usable: {Q}.alpha holds values as large as 3e+38 (usable weights stay far below 10000)"),
}


def _write(folder, name: str, tensors: dict, metadata: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / f"{name}.safetensors"), metadata)


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_file_is_refused_with_one_line_saying_what_is_wrong(tmp_path, name):
    tensors, metadata, reason = MALFORMED[name]
    _write(tmp_path, name, tensors, metadata)
    path = tmp_path / f"{name}.safetensors"
    with pytest.raises(OnewordError) as refused:
        read_lora(path)
    assert str(refused.value).startswith(f"{path}: {reason}") and "\n" not in str(refused.value)


def test_a_folder_of_malformed_files_lists_the_good_one_and_a_prompt_leaves_them_out(tiny_sd1, tmp_path):
    for name, (tensors, metadata, _) in MALFORMED.items():
        _write(tmp_path, name, tensors, metadata)
    save_lora(random_lora(tiny_sd1, "good"), tmp_path / "good.safetensors", {})
    rows = {row.name: row for row in survey(tmp_path, tiny_sd1)}
    assert rows["good"].status == "ok" and rows["good"].layers == "60/60"
    for name, (_, _, reason) in MALFORMED.items():
        assert rows[name].status.startswith(f"skipped: {reason}"), rows[name].status
    library = LoraLibrary.scan(tmp_path)
    assert library.get("good") is not None and library.get("alpha-vector") is None
    path, reason = tmp_path / "alpha-vector.safetensors", MALFORMED["alpha-vector"][2]
    assert library.notes == [f"<lora:alpha-vector>: {path}: {reason}; left out"]


def test_generate_leaves_a_malformed_lora_out_with_a_note(tiny_sd1, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "lora", "bad", *MALFORMED["peft-pattern"][:2])
    code, out, err = run_in_process(monkeypatch, capsys, "generate", "--model", "tiny-sd1", "--seed", "1", "--steps",
                                    "1", "--prompt", "a ball <lora:bad:1>", "--lora-dir", "lora", "--out", "out")
    assert code == 0, err
    assert err == ("note: <lora:bad>: lora/bad.safetensors: not usable: lora_adapter_metadata: unet.alpha_pattern is "
                   "a list, not an object of module names and alphas; left out\n")
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_inspect_says_what_is_wrong_with_a_malformed_lora(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "rank-0", *MALFORMED["rank-0"][:2])
    code, out, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "rank-0.safetensors"))
    assert code == 0, err
    assert f"  problem: {MALFORMED['rank-0'][2]}" in out


def test_float8_weights_are_read_as_float32(tmp_path):
    pair = _pair()
    _write(tmp_path, "f8", {key: t.to(torch.float8_e4m3fn) for key, t in pair.items()}, {})
    layer = read_lora(tmp_path / "f8.safetensors").layers[Q]
    assert layer.down.dtype == torch.float32
    assert torch.equal(layer.down, pair[f"{Q}.lora_down.weight"].to(torch.float8_e4m3fn).float())


@pytest.mark.parametrize("steps", ["9" * 5000, "\u00b2", "1500 steps"])
def test_a_step_count_that_is_no_number_is_left_unknown(tmp_path, steps):
    _write(tmp_path, "steps", {**_pair(), "bundle_emb.w.string_to_param.*": torch.ones(1, 64)}, {"ss_steps": steps})
    lora = read_lora(tmp_path / "steps.safetensors")
    assert lora.step is None and Q in lora.layers and lora.embeddings["w"].step is None


def test_a_lokr_that_does_not_fit_is_left_out_before_its_weight_change_is_computed(tiny_sd1, tmp_path, monkeypatch):
    # kron(64x64, 2x2) is a 128x128 change, the layer 32x32: 4 times too many numbers, known from the shapes alone
    _write(tmp_path, "lokr", {f"{Q}.lokr_w1": torch.ones(64, 64) * 0.01, f"{Q}.lokr_w2": torch.ones(2, 2)}, {})
    lora = read_lora(tmp_path / "lokr.safetensors")

    def computed(self):
        raise AssertionError("a weight change was computed")

    monkeypatch.setattr(LokrLayer, "delta", computed)
    fitted = fit(lora, tiny_sd1)
    assert fitted.layers == []
    assert fitted.notes("lokr") == [f"lora lokr: 1 layer skipped: its shape does not fit the model's layer (e.g. {Q}: "
                                    "128x128, the layer 32x32)"]


def test_a_tucker_locon_whose_ranks_differ_on_each_side_applies(tiny_sd1, tmp_path):
    # LyCORIS's Tucker LoCon: down [r1, in, 1, 1] -> core [r2, r1, 3, 3] -> up [out, r2, 1, 1]
    generator = torch.Generator().manual_seed(3)
    parts = {"lora_down.weight": (4, 32, 1, 1), "lora_mid.weight": (8, 4, 3, 3), "lora_up.weight": (32, 8, 1, 1)}
    _write(tmp_path, "cp", {f"{CONV}.{part}": torch.randn(shape, generator=generator) * 0.1
                            for part, shape in parts.items()}, {})
    fitted = fit(read_lora(tmp_path / "cp.safetensors"), tiny_sd1)
    [(place, layer)] = fitted.layers
    x = torch.randn(1, 32, 8, 8, generator=generator)
    torch.testing.assert_close(layer.forward(place.module, x), apply_weight(place.module, x, layer.delta()),
                               atol=1e-5, rtol=1e-4)


def test_tag_weights_beyond_a_hundred_are_refused(tmp_path):
    from oneword.conditioning.tags import parse_tags
    from oneword.lora.tag import LoraTag

    for text, weight in (("<lora:good:1e30>", "1e+30"), ("<lora:good:1:-101>", "-101"), ("<lora:good:te=500>", "500")):
        _, [tag] = parse_tags(text)
        with pytest.raises(OnewordError) as refused:
            LoraTag().check(tag)
        assert str(refused.value) == f"prompt tag {text}: the weight {weight} is outside -100..100 (LoRAs are used " \
                                     "within about -5..5)"
    _, [tag] = parse_tags("<lora:good:100:-100>")
    LoraTag().check(tag)


def test_generate_refuses_a_tag_weight_of_1e30(tiny_sd1, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    save_lora(random_lora(tiny_sd1, "good"), tmp_path / "lora" / "good.safetensors", {})
    code, _, err = run_in_process(monkeypatch, capsys, "generate", "--model", "tiny-sd1", "--steps", "1", "--prompt",
                                  "a ball <lora:good:1e30>", "--lora-dir", "lora", "--out", "out")
    assert code == 1 and err.startswith("error: prompt tag <lora:good:1e30>: the weight 1e+30 is outside -100..100")
    assert not (tmp_path / "out").exists()


def test_a_file_of_too_many_tensors_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setattr(read, "MAX_TENSORS", 10)
    tensors = {f"lora_unet_x{i}.lora_down.weight": torch.ones(1, 2) for i in range(11)}
    _write(tmp_path, "many", tensors, {})
    torch.save(tensors, tmp_path / "many.pt")
    torch.save(tensors, tmp_path / "many.ckpt", _use_new_zipfile_serialization=False)  # torch's older format

    opened = read.safe_open

    class HeaderOnly:
        """safe_open, but reading a tensor fails the test."""

        def __init__(self, *args, **kwargs) -> None:
            self.file = opened(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.file.__exit__(*exc)

        def keys(self) -> list[str]:
            return self.file.keys()

        def get_tensor(self, key: str):
            raise AssertionError("a tensor was read")

    def unpickled(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(read, "safe_open", HeaderOnly)
    monkeypatch.setattr("oneword.safeload.load_pickle", unpickled)
    for suffix in (".safetensors", ".pt", ".ckpt"):
        with pytest.raises(OnewordError) as refused:
            read_lora(tmp_path / f"many{suffix}")
        assert str(refused.value) == (f"{tmp_path / f'many{suffix}'}: 11 tensors, more than any LoRA has (a few "
                                      "thousand; at most 10 are read); refused unread")


def test_a_header_larger_than_any_lora_s_is_refused_unread(tmp_path):
    path = tmp_path / "header.safetensors"
    path.write_bytes((read.MAX_HEADER_BYTES + 1).to_bytes(8, "little") + b"{}")
    with pytest.raises(OnewordError) as refused:
        read_lora(path)
    assert str(refused.value) == (f"{path}: a safetensors header of {read.MAX_HEADER_BYTES + 1} bytes, more than any "
                                  "LoRA's (a few MB; at most 16 MiB are read); refused unread")


def test_a_pickled_tensor_that_claims_more_numbers_than_stored_is_refused(tmp_path):
    down = torch.full((1, 1), 0.1).expand(4, 32)  # saved as one number with strides (0, 0)
    torch.save({f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": torch.ones(32, 4)}, tmp_path / "view.pt")
    with pytest.raises(OnewordError) as refused:
        read_lora(tmp_path / "view.pt")
    assert str(refused.value) == (f"{tmp_path / 'view.pt'}: not usable: {Q}.lora_down.weight claims 512 bytes of "
                                  "numbers but the file stores only 4 (an expanded view)")


def test_listing_a_folder_does_not_hash_its_files(tiny_sd1, tmp_path, monkeypatch):
    save_lora(random_lora(tiny_sd1, "good"), tmp_path / "good.safetensors", {})

    def hashed(*args):
        raise AssertionError("a file was hashed")

    monkeypatch.setattr("oneword.lora.library.file_hash", hashed)
    assert [row.status for row in survey(tmp_path, tiny_sd1)] == ["ok"]


def test_inspect_describes_a_lokr_of_whole_factors(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "lokr", {f"{Q}.lokr_w1": torch.ones(2, 2) * 0.1, f"{Q}.lokr_w2": torch.ones(16, 16) * 0.1}, {})
    code, out, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "lokr.safetensors"))
    assert code == 0, err
    assert "  what: LoKr\n" in out and "  rank: -\n" in out


def test_float8_weights_in_torch_s_older_format_are_refused_in_one_line(tmp_path):
    path = tmp_path / "f8.ckpt"  # torch writes this format but cannot read float8 back from it
    torch.save({key: t.to(torch.float8_e4m3fn) for key, t in _pair().items()}, path,
               _use_new_zipfile_serialization=False)
    with pytest.raises(OnewordError) as refused:
        read_lora(path)
    assert str(refused.value) == f"{path}: not a readable PyTorch file (damaged pickle data)"


def test_a_cut_file_in_torch_s_older_format_is_refused_in_one_line(tmp_path):
    whole, path = tmp_path / "whole.ckpt", tmp_path / "cut.ckpt"
    torch.save(_pair(), whole, _use_new_zipfile_serialization=False)
    path.write_bytes(whole.read_bytes()[:18])  # inside a number the unpickler reads with struct
    with pytest.raises(OnewordError) as refused:
        read_lora(path)
    assert str(refused.value) == f"{path}: not a readable PyTorch file (damaged pickle data)"


def test_a_file_in_torch_s_older_format_naming_storage_it_lacks_is_refused_in_one_line(tmp_path):
    import re

    whole, path = tmp_path / "whole.ckpt", tmp_path / "mismatched.ckpt"
    torch.save({f"{Q}.lora_down.weight": torch.ones(4, 32)}, whole, _use_new_zipfile_serialization=False)
    data = whole.read_bytes()
    *_, listed = re.finditer(rb"X.\x00\x00\x00(\d{6,})q", data)  # the storage key in the list after the object
    start, end = listed.span(1)
    path.write_bytes(data[:start] + b"1" * (end - start) + data[end:])
    with pytest.raises(OnewordError) as refused:
        read_lora(path)
    assert str(refused.value) == f"{path}: not a readable PyTorch file (damaged pickle data)"
