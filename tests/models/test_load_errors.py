"""Files that are not loadable checkpoints: one line naming the file, nothing executed, nothing half-written."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

import oneword
from oneword.errors import OnewordError
from oneword.models.export import save_single_file
from oneword.models.single_file import load_single_file


def error_of(path, loader=oneword.load_base) -> str:
    with pytest.raises(OnewordError) as e:
        loader(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.fixture
def tiny_file(tiny_models, tmp_path):
    """The tiny SD 1.x model as an original-layout safetensors file, and its tensors."""
    path = tmp_path / "tiny.safetensors"
    save_single_file(tiny_models("sd1"), path)
    return path, load_file(path)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.safetensors"
    assert error_of(path) == f"--model {path}: no such file or folder"
    assert error_of(path, load_single_file) == f"{path}: no such file"


def test_text_file_renamed_safetensors(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("these are my notes, not a model\n" * 20)
    assert error_of(path).startswith(f"{path}: not a readable safetensors file (")


def test_truncated_safetensors(tiny_file, tmp_path):
    path, _ = tiny_file
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    assert error_of(cut).startswith(f"{cut}: not a readable safetensors file (")


def test_unrelated_keys(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2, 2), "head.bias": torch.zeros(2)}, path)
    assert error_of(path) == (f"{path}: not a Stable Diffusion checkpoint (no model.diffusion_model keys; "
                              "2 tensors: encoder.weight, head.bias)")


def test_unknown_architecture(tiny_file, tmp_path):
    _, tensors = tiny_file
    unet = {k: v for k, v in tensors.items() if k.startswith("model.diffusion_model.")}
    for key in [k for k in unet if k.endswith(("attn2.to_k.weight", "attn2.to_v.weight"))]:
        unet[key] = torch.zeros(unet[key].shape[0], 4096)
    path = tmp_path / "wide.safetensors"
    save_file(unet, path)
    assert error_of(path) == f"{path}: unknown architecture: UNet with context width 4096 and no text encoder keys"


def test_missing_required_keys_are_named(tiny_file, tmp_path):
    _, tensors = tiny_file
    gone = ["first_stage_model.decoder.conv_out.bias", "first_stage_model.quant_conv.weight"]
    path = tmp_path / "partial.safetensors"
    save_file({k: v for k, v in tensors.items() if k not in gone}, path)
    assert error_of(path) == f"{path}: missing 2 weights of an sd1 checkpoint: {', '.join(sorted(gone))}"


def test_missing_text_encoder_layer_is_named(tiny_file, tmp_path):
    _, tensors = tiny_file
    key = "cond_stage_model.transformer.text_model.final_layer_norm.weight"
    path = tmp_path / "no-norm.safetensors"
    save_file({k: v for k, v in tensors.items() if k != key}, path)
    assert error_of(path) == f"{path}: missing 1 weights of an sd1 checkpoint: {key}"


def test_missing_second_sdxl_encoder_is_named(tiny_models, tmp_path):
    save_single_file(tiny_models("sdxl"), tmp_path / "full.safetensors")
    tensors = load_file(tmp_path / "full.safetensors")
    path = tmp_path / "one-encoder.safetensors"
    save_file({k: v for k, v in tensors.items() if not k.startswith("conditioner.embedders.1.")}, path)
    assert error_of(path) == f"{path}: missing text encoder key conditioner.embedders.1.model.token_embedding.weight"


def test_wrong_shape_is_named(tiny_file, tmp_path):
    _, tensors = tiny_file
    key = "model.diffusion_model.out.0.weight"
    tensors[key] = torch.zeros(48)
    path = tmp_path / "odd.safetensors"
    save_file(tensors, path)
    assert error_of(path) == (f"{path}: 1 weights have unexpected shapes for an sd1 checkpoint, "
                              f"first {key}: [48], expected [32]")


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (marker.__class__.touch, (marker,))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1)}, "extra": Payload()}, path)
    message = error_of(path)
    assert message.startswith(f"{path}: refused: loading it would run code from the file")
    assert not marker.exists()


def test_checkpoint_of_something_else(tmp_path):
    path = tmp_path / "list.ckpt"
    torch.save([torch.zeros(1), torch.zeros(2)], path)
    assert error_of(path) == f"{path}: not a model checkpoint (it holds a list, not tensors)"


def test_truncated_ckpt(tiny_models, tmp_path):
    save_single_file(tiny_models("sd1"), tmp_path / "whole.ckpt")
    data = (tmp_path / "whole.ckpt").read_bytes()
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[: len(data) // 2])
    assert error_of(path).startswith(f"{path}: not a readable PyTorch file (")


def test_export_refuses_other_suffixes_and_leaves_no_file(tiny_models, tmp_path):
    path = tmp_path / "model.bin"
    with pytest.raises(OnewordError, match=r"model\.bin: a single-file checkpoint must end in \.safetensors or \.ckpt"):
        save_single_file(tiny_models("sd1"), path)
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_no_partial_file(tiny_models, tmp_path, monkeypatch):
    import oneword.models.export as export

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(export, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_single_file(tiny_models("sd1"), tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("part", ["unet", "text_encoder"])
def test_folder_whose_bin_would_run_code_is_refused_as_such(tiny_models, tmp_path, part):
    from oneword.models.folder import save_diffusers_folder

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (marker.__class__.touch, (marker,))

    model = tiny_models("sd1")
    folder = tmp_path / "model"
    save_diffusers_folder(model, folder)
    module = model.unet if part == "unet" else model.encoders[0].model
    name = "diffusion_pytorch_model.bin" if part == "unet" else "pytorch_model.bin"
    for weights in (folder / part).glob("*.safetensors"):
        weights.unlink()
    torch.save({**module.state_dict(), "extra": Payload()}, folder / part / name)
    message = error_of(folder)
    assert message.startswith(f"{folder / part / name}: refused: loading it would run code from the file (it asks for ")
    assert "weights_only" not in message and "\x1b" not in message
    assert not marker.exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_weight_that_is_not_finite_is_refused_naming_it(tiny_file, tmp_path, value):
    _, tensors = tiny_file
    key = "model.diffusion_model.input_blocks.1.1.proj_in.weight"
    broken = dict(tensors)
    broken[key] = broken[key].clone()
    broken[key].view(-1)[-1] = value  # the last value of the tensor
    path = tmp_path / "broken.safetensors"
    save_file(broken, path)
    assert error_of(path) == f"{path}: the weight {key} holds NaN or infinite values"
    ckpt = tmp_path / "broken.ckpt"
    torch.save({"state_dict": broken}, ckpt)
    assert error_of(ckpt) == f"{ckpt}: the weight {key} holds NaN or infinite values"


def test_a_folder_weight_that_is_not_finite_is_refused_naming_it(tiny_models, tmp_path):
    from oneword.models.folder import save_diffusers_folder

    model = tiny_models("sd1")
    folder = tmp_path / "model"
    save_diffusers_folder(model, folder)
    (weights,) = (folder / "vae").glob("*.safetensors")
    tensors = load_file(weights)
    key = "decoder.conv_out.weight"
    tensors[key][0, 0, 0, 0] = float("nan")
    save_file(tensors, weights)
    assert error_of(folder) == f"{folder / 'vae'}: the weight {key} holds NaN or infinite values"


def test_the_finite_check_reads_large_tensors_in_chunks(monkeypatch):
    import oneword.models.finite as finite

    seen = []
    real = torch.isfinite
    monkeypatch.setattr(finite.torch, "isfinite", lambda t: seen.append(t.numel()) or real(t))
    tensor = torch.zeros(10, 7)
    assert finite.all_finite(tensor, chunk=16)
    assert seen == [16, 16, 16, 16, 6]
    tensor[9, 6] = float("-inf")
    assert not finite.all_finite(tensor, chunk=16)
