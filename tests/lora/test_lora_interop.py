"""A LoRA oneword writes changes the model in diffusers (`load_lora_weights`, its kohya conversion and PEFT) exactly
as oneword's own application does: the same UNet and text-encoder outputs."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from lora_helpers import random_lora, text_output, unet_output

from oneword.lora.apply import loras_applied
from oneword.lora.read import read_lora
from oneword.lora.write import save_lora
from oneword.models.pipeline import make_pipeline


def _copy(model):
    encoders = [dataclasses.replace(e, model=copy.deepcopy(e.model)) for e in model.encoders]
    return dataclasses.replace(model, unet=copy.deepcopy(model.unet), encoders=encoders)


def _outputs(model) -> list[torch.Tensor]:
    return [unet_output(model), *(text_output(model, i) for i in range(len(model.encoders)))]


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl"])
def test_diffusers_applies_a_written_lora_as_oneword_does(tiny_models, tmp_path, kind):
    model = tiny_models(kind)
    save_lora(random_lora(model, targets="conv"), tmp_path / "rand.safetensors", {})  # LoCon: 3x3 convs too
    plain = _outputs(model)
    with loras_applied(model, [(read_lora(tmp_path / "rand.safetensors"), 1.0, 1.0)]) as notes:
        ours = _outputs(model)
    assert notes == []
    theirs_model = _copy(model)
    make_pipeline(theirs_model).load_lora_weights(str(tmp_path), weight_name="rand.safetensors")
    theirs = _outputs(theirs_model)
    for before, mine, diffusers in zip(plain, ours, theirs, strict=True):
        assert (mine - before).abs().max() > 0.1  # the LoRA changes every part
        torch.testing.assert_close(mine, diffusers, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(plain, _outputs(model), strict=True))  # and is gone after the block
