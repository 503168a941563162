"""`--convert` on every kind of file oneword reads, for every tool: each output loads in oneword, the tool loads it
as `inspect` then says (diffusers' own loaders run here on the tiny models), and the input is left as it was."""

from __future__ import annotations

import copy
import dataclasses
import hashlib

import pytest
import torch
from diffusers_parity import _fresh_tokenizer
from lora.lora_helpers import random_lora, unet_output
from safetensors.torch import save_file

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import load_embedding_file, save_embedding
from oneword.errors import OnewordError
from oneword.inspect.convert import convert
from oneword.inspect.describe import inspect_file
from oneword.inspect.tools import support
from oneword.lora.names import places
from oneword.lora.read import read_lora
from oneword.lora.write import lora_tensors, save_lora
from oneword.models.pipeline import make_pipeline

K = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"  # SD 1.x: Linear 768 -> 320
TOOLS = ("a1111", "comfyui", "diffusers", "kohya")


def _t(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + sum(shape))) * 0.3


def _sd1_vectors(n=2):
    return {"*": _t(n, 64)}


def _xl_vectors(n=2):
    return {"clip_l": _t(n, 64), "clip_g": _t(n, 128, seed=1)}


def _png(folder, model):
    from PIL import Image

    from oneword.embeddings.png import write_png_embedding

    write_png_embedding(Embedding("pngword", _sd1_vectors()), folder / "preview.png", Image.new("RGB", (64, 64)))
    return folder / "preview.png"


def _bundle(folder, models, kind="sd1", name="face", word="zqx"):
    model = models(kind)
    vectors = _xl_vectors() if kind == "sdxl" else _sd1_vectors()
    lora = dataclasses.replace(random_lora(model), embeddings={word: Embedding(word, vectors)})
    save_lora(lora, folder / f"{name}.safetensors", {"ss_steps": "200"})
    return folder / f"{name}.safetensors"


def _onetrainer_bundle(folder, models, kind="sd1"):
    """OneTrainer's bundle (StableDiffusionLoRASaver, StableDiffusionXLLoRASaver): an SD 1.x word's vectors as
    `bundle_emb.WORD.clip_l`; an SDXL word's as `clip_l` and `clip_g`, with its output vectors `clip_l_out` and
    `clip_g_out`."""
    tensors = lora_tensors(random_lora(models(kind)), torch.float32)
    if kind == "sdxl":
        tensors.update({f"bundle_emb.<ot>.{part}": _t(3, width, seed=i) for i, (part, width) in enumerate(
            (("clip_l", 64), ("clip_g", 128), ("clip_l_out", 64), ("clip_g_out", 128)))})
    else:
        tensors["bundle_emb.<ot>.clip_l"] = _t(3, 64)
    save_file(tensors, str(folder / "ot.safetensors"))
    return folder / "ot.safetensors"


def _peft(folder, models, word=None):
    """A PEFT file of diffusers' module paths (`unet.<path>.lora_A.weight`), with `word` bundled."""
    model = models("sd1")
    lora = random_lora(model)
    where = places(model, "attn-mlp")
    tensors = {}
    for key, layer in lora.layers.items():
        prefix = "unet" if where[key].part == "unet" else "text_encoder"
        tensors[f"{prefix}.{where[key].path}.lora_A.weight"] = layer.down.contiguous()
        tensors[f"{prefix}.{where[key].path}.lora_B.weight"] = layer.up.contiguous()
    if word:
        tensors[f"bundle_emb.{word}.string_to_param.*"] = _t(2, 64)
    save_file(tensors, str(folder / "peft.safetensors"))
    return folder / "peft.safetensors"


def _lycoris(folder, models, kind):
    parts = {"LoHa": {"hada_w1_a": _t(320, 4), "hada_w1_b": _t(4, 768), "hada_w2_a": _t(320, 4),
                      "hada_w2_b": _t(4, 768)}, "LoKr": {"lokr_w1": _t(4, 4), "lokr_w2": _t(80, 192)}}[kind]
    save_file({f"{K}.{part}": tensor for part, tensor in parts.items()}, str(folder / f"{kind}.safetensors"))
    return folder / f"{kind}.safetensors"


def _hypernetwork(folder, models):
    from oneword.hypernetworks.formats import save_hypernetwork
    from oneword.hypernetworks.hypernetwork import HypernetworkSettings, new_hypernetwork

    save_hypernetwork(new_hypernetwork("style", [768, 320], HypernetworkSettings()), folder / "style.safetensors")
    return folder / "style.safetensors"


KINDS = {
    "embedding A1111 .pt": lambda f, m: (save_embedding(Embedding("a", _sd1_vectors()), f / "a.pt"), f / "a.pt")[1],
    "embedding SDXL": lambda f, m: (save_embedding(Embedding("qxl", _xl_vectors()), f / "qxl.safetensors"),
                                    f / "qxl.safetensors")[1],
    "embedding kohya emb_params": lambda f, m: (save_file({"emb_params": _t(2, 64)}, str(f / "k.safetensors")),
                                                f / "k.safetensors")[1],
    "embedding OneTrainer emp_params": lambda f, m: (save_file({"emp_params": _t(2, 64)}, str(f / "o.safetensors")),
                                                     f / "o.safetensors")[1],
    "embedding diffusers learned_embeds": lambda f, m: (torch.save({"<d>": _t(2, 64)}, f / "d.bin"), f / "d.bin")[1],
    "embedding in a PNG": _png,
    "bundle SD 1.x": _bundle,
    "bundle SDXL": lambda f, m: _bundle(f, m, "sdxl"),
    "bundle OneTrainer SD 1.x": _onetrainer_bundle,
    "bundle OneTrainer SDXL": lambda f, m: _onetrainer_bundle(f, m, "sdxl"),
    "pivotal (the word is the file's name)": lambda f, m: _bundle(f, m, name="pstar", word="pstar"),
    "LoRA kohya": lambda f, m: (save_lora(random_lora(m("sd1")), f / "kohya.safetensors", {}),
                                f / "kohya.safetensors")[1],
    "LoRA PEFT": _peft,
    "bundle PEFT": lambda f, m: _peft(f, m, word="zqp"),
    "LoHa": lambda f, m: _lycoris(f, m, "LoHa"),
    "LoKr": lambda f, m: _lycoris(f, m, "LoKr"),
    "hypernetwork .safetensors": _hypernetwork,
}
REFUSED = {("LoHa", "diffusers"), ("LoHa", "kohya"), ("LoKr", "diffusers"), ("LoKr", "kohya"),
           ("hypernetwork .safetensors", "diffusers"), ("hypernetwork .safetensors", "kohya")}
"""(kind, tool) that no conversion makes loadable: refused with the reason."""


def _loads_in_oneword(path):
    found = inspect_file(path)
    if found.what == "embedding":
        return load_embedding_file(path)
    if found.what == "hypernetwork":
        from oneword.hypernetworks.formats import load_hypernetwork

        return load_hypernetwork(path)
    return read_lora(path)


def _load_in_diffusers(model, written):
    """Each written file through diffusers' own loader, on a copy of `model` with tokenizers of its own."""
    encoders = [dataclasses.replace(e, model=copy.deepcopy(e.model), tokenizer=_fresh_tokenizer(e.spec.pad_token))
                for e in model.encoders]
    theirs = dataclasses.replace(model, unet=copy.deepcopy(model.unet), encoders=encoders)
    pipe = make_pipeline(theirs)
    for path, _ in written:
        if inspect_file(path).what != "embedding":
            pipe.load_lora_weights(str(path.parent), weight_name=path.name)
            assert (unet_output(theirs) - unet_output(model)).abs().max() > 1e-3  # the LoRA acts
            continue
        word = path.name.split(".")[0]
        part = path.suffixes[0] if len(path.suffixes) > 1 else None
        if part in (".clip_l", ".clip_g"):  # SDXL: one file per encoder, as the conversion says
            encoder, tokenizer = ((pipe.text_encoder, pipe.tokenizer) if part == ".clip_l"
                                  else (pipe.text_encoder_2, pipe.tokenizer_2))
            pipe.load_textual_inversion(str(path), token=word, text_encoder=encoder, tokenizer=tokenizer)
            assert word in tokenizer.get_vocab()
        else:
            pipe.load_textual_inversion(str(path))
            assert word in pipe.tokenizer.get_vocab()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_converts_for_every_tool_into_files_it_loads_leaving_the_input_as_it_was(
        kind, tiny_models, tmp_path):
    (tmp_path / "in").mkdir()
    source = KINDS[kind](tmp_path / "in", tiny_models)
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    found = inspect_file(source)
    claims = {tool.lower(): ok for tool, ok, _ in support(found)}
    for tool in TOOLS:
        out = tmp_path / tool
        if (kind, tool) in REFUSED:
            assert claims[tool] is False
            with pytest.raises(OnewordError, match=f"cannot be converted for {tool}"):
                convert(found, tool, out)
            assert not out.exists()
            continue
        written = convert(found, tool, out)
        assert (written == []) == claims[tool]  # nothing to write where the tool loads the file as it is
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p, _ in written) if written else (
            not out.exists())
        for path, _ in written:
            assert path.parent == out.resolve()
            assert _loads_in_oneword(path) is not None
            assert {t.lower(): ok for t, ok, _ in support(inspect_file(path))}[tool], (path, tool)
        if written and tool == "diffusers":
            _load_in_diffusers(tiny_models("sdxl" if "SDXL" in kind else "sd1"), written)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    assert [p.name for p in (tmp_path / "in").iterdir()] == [source.name]
