"""A LoRA oneword writes changes the model in diffusers (`load_lora_weights`, its kohya conversion and PEFT) exactly
as oneword's own application does: the same UNet and text-encoder outputs."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from diffusers_parity import _fresh_tokenizer
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


def test_a_bundle_converted_for_diffusers_loads_there_as_oneword_applies_it(tiny_sd1, tmp_path):
    """The pieces `oneword inspect --convert diffusers` writes of a LoRA with a bundled word load in diffusers
    (`load_lora_weights`, `load_textual_inversion`) and give the conditioning and the UNet output oneword gives."""
    from oneword.conditioning.encode import encode_prompts
    from oneword.embeddings.embedding import Embedding
    from oneword.inspect.convert import convert
    from oneword.inspect.describe import inspect_file

    model = tiny_sd1
    vectors = torch.randn(2, 64, generator=torch.Generator().manual_seed(4))
    bundle = dataclasses.replace(random_lora(model, size=0.1), embeddings={"zqx": Embedding("zqx", {"*": vectors})})
    save_lora(bundle, tmp_path / "pivot.safetensors", {})
    with pytest.raises(ValueError, match="lora"):  # diffusers refuses the bundle as it is, as inspect says
        make_pipeline(_copy(model)).load_lora_weights(str(tmp_path), weight_name="pivot.safetensors")
    written = convert(inspect_file(tmp_path / "pivot.safetensors"), "diffusers", tmp_path / "out")
    assert [p.name for p, _ in written] == ["pivot.safetensors", "zqx.safetensors"]
    prompt = "a photo of zqx"
    with torch.no_grad(), loras_applied(model, [(read_lora(tmp_path / "pivot.safetensors"), 1.0, 1.0)]):
        ours = encode_prompts(model, [prompt], read_lora(tmp_path / "pivot.safetensors").embeddings).context
        ours_out = model.unet(torch.ones(1, 4, 8, 8), torch.tensor([500]), encoder_hidden_states=ours).sample
    theirs_model = _copy(model)  # with a tokenizer of its own: diffusers adds the word's tokens to it
    encoder = theirs_model.encoders[0]
    theirs_model.encoders[0] = dataclasses.replace(encoder, tokenizer=_fresh_tokenizer(encoder.spec.pad_token))
    pipe = make_pipeline(theirs_model)
    pipe.load_lora_weights(str(tmp_path / "out"), weight_name="pivot.safetensors")
    pipe.load_textual_inversion(str(tmp_path / "out" / "zqx.safetensors"))
    with torch.no_grad():
        theirs = pipe.encode_prompt(prompt, "cpu", 1, False)[0]
        theirs_out = pipe.unet(torch.ones(1, 4, 8, 8), torch.tensor([500]), encoder_hidden_states=theirs).sample
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours_out, theirs_out, rtol=1e-4, atol=1e-5)
    plain = encode_prompts(model, [prompt], {}).context
    assert (ours - plain).abs().max() > 0.1  # the word and the LoRA change the conditioning
