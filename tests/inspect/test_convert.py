"""`oneword inspect FILE --convert TOOL --out DIR`: outputs named so that none replaces another or the input, every
path inside DIR whatever names the file holds, an existing file replaced only with --overwrite, all or nothing."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch
from cli_helpers import run_in_process
from safetensors import safe_open
from safetensors.torch import save_file

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import load_embedding_file
from oneword.errors import OnewordError
from oneword.inspect.convert import convert
from oneword.inspect.describe import inspect_file
from oneword.inspect.tools import support
from oneword.lora.network import Lora, LoraLayer
from oneword.lora.read import read_lora
from oneword.lora.write import save_lora

K = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"  # SD 1.x: Linear 768 -> 320


def _t(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + sum(shape))) * 0.1


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _pivotal(path, word="pstar"):
    """A LoRA file with its word bundled, as `oneword train --kind pivotal --name pstar` writes it."""
    lora = Lora(path.stem, {K: LoraLayer(_t(4, 768), _t(320, 4), 2.0)},
                embeddings={word: Embedding(word, {"*": _t(2, 768, seed=1)})})
    save_lora(lora, path, {"ss_steps": "100"})
    return lora


def test_a_pivotal_file_becomes_its_lora_and_its_word_neither_replacing_the_other(tmp_path, monkeypatch, capsys):
    lora = _pivotal(tmp_path / "pstar.safetensors")
    out = tmp_path / "out"
    code, text, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "pstar.safetensors"),
                                     "--convert", "comfyui", "--out", str(out))
    assert code == 0, err
    assert _files(out) == ["pstar-lora.safetensors", "pstar.safetensors"]
    assert f"wrote {out / 'pstar-lora.safetensors'}: LoRA without the bundled words (1 left out)\n" in text
    assert f"wrote {out / 'pstar.safetensors'}: embedding pstar\n" in text
    converted = read_lora(out / "pstar-lora.safetensors")
    assert list(converted.layers) == [K] and converted.embeddings == {}
    assert torch.equal(converted.layers[K].down, read_lora(tmp_path / "pstar.safetensors").layers[K].down)
    assert torch.equal(load_embedding_file(out / "pstar.safetensors").vectors["*"],
                       lora.embeddings["pstar"].vectors["*"])


@pytest.mark.parametrize("overwrite", [False, True])
def test_converting_into_the_files_own_folder_never_replaces_it(tmp_path, monkeypatch, capsys, overwrite):
    _pivotal(tmp_path / "pstar.safetensors")
    before = _digest(tmp_path / "pstar.safetensors")
    code, _, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "pstar.safetensors"), "--convert",
                                  "diffusers", "--out", str(tmp_path), *(["--overwrite"] if overwrite else []))
    assert (code, err) == (1, f"error: {tmp_path / 'pstar.safetensors'}: the word 'pstar' would be written over the "
                              "file being converted; choose another --out\n")
    assert _digest(tmp_path / "pstar.safetensors") == before and _files(tmp_path) == ["pstar.safetensors"]
    # with another word, the LoRA is written beside the file under a name of its own
    _pivotal(tmp_path / "face.safetensors", word="zqx")
    code, _, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "face.safetensors"), "--convert",
                                  "comfyui", "--out", str(tmp_path), *(["--overwrite"] if overwrite else []))
    assert code == 0, err
    assert _files(tmp_path) == ["face-lora.safetensors", "face.safetensors", "pstar.safetensors", "zqx.safetensors"]
    assert list(read_lora(tmp_path / "face.safetensors").embeddings) == ["zqx"]  # the input, as it was


def test_an_existing_file_is_replaced_only_with_overwrite_and_nothing_is_written_before_the_check(
        tmp_path, monkeypatch, capsys):
    _pivotal(tmp_path / "face.safetensors", word="zqx")
    out = tmp_path / "out"
    out.mkdir()
    (out / "zqx.safetensors").write_bytes(b"mine")
    args = ("inspect", str(tmp_path / "face.safetensors"), "--convert", "kohya", "--out", str(out))
    code, _, err = run_in_process(monkeypatch, capsys, *args)
    assert (code, err) == (1, f"error: {tmp_path / 'face.safetensors'}: the word 'zqx': {out / 'zqx.safetensors'} "
                              "already exists (not replaced; --overwrite replaces it)\n")
    assert _files(out) == ["zqx.safetensors"] and (out / "zqx.safetensors").read_bytes() == b"mine"  # no LoRA either
    code, _, err = run_in_process(monkeypatch, capsys, *args, "--overwrite")
    assert code == 0, err
    assert _files(out) == ["face.safetensors", "zqx.safetensors"]
    assert load_embedding_file(out / "zqx.safetensors").name == "zqx"


def test_two_files_whose_outputs_collide_are_refused_before_either_is_written(tmp_path, monkeypatch, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _pivotal(tmp_path / "a" / "face.safetensors", word="zqx")
    _pivotal(tmp_path / "b" / "body.safetensors", word="zqx")
    code, _, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "a" / "face.safetensors"),
                                  str(tmp_path / "b" / "body.safetensors"), "--convert", "comfyui",
                                  "--out", str(tmp_path / "out"), "--overwrite")
    assert (code, err) == (1, f"error: {tmp_path / 'b' / 'body.safetensors'}: the word 'zqx': "
                              f"{tmp_path / 'out' / 'zqx.safetensors'} is written from "
                              f"{tmp_path / 'a' / 'face.safetensors'} too\n")
    assert not (tmp_path / "out").exists()


def _png_embedding(path, name):
    from PIL import Image

    from oneword.embeddings.png import write_png_embedding

    write_png_embedding(Embedding(name, {"*": _t(1, 768)}), path, Image.new("RGB", (64, 64)))


@pytest.mark.parametrize("tool", ["comfyui", "diffusers", "kohya"])
def test_a_name_read_from_a_file_never_leads_outside_out(tmp_path, tool):
    inside = tmp_path / "deep" / "er"
    inside.mkdir(parents=True)
    _png_embedding(inside / "x.png", "../../x")
    found = inspect_file(inside / "x.png")
    assert found.words == ["../../x"]
    with pytest.raises(OnewordError, match=r"x\.png: the word '\.\./\.\./x': the name '\.\./\.\./x.safetensors' "
                                           "is a path, not a file's name"):
        convert(found, tool, inside / "out")
    victim = tmp_path / "victim"
    bundle = tmp_path / "bundle.safetensors"
    save_file({f"{K}.lora_down.weight": _t(4, 768), f"{K}.lora_up.weight": _t(320, 4),
               f"bundle_emb.{victim}.string_to_param.*": _t(1, 768)}, str(bundle))
    found = inspect_file(bundle)
    assert found.words == [str(victim)]
    with pytest.raises(OnewordError, match="is a path, not a file's name"):
        convert(found, tool, inside / "out")
    assert _files(tmp_path) == ["bundle.safetensors", "deep", "deep/er", "deep/er/x.png"]


def _onetrainer_bundle(path, *parts):
    """A LoRA file as OneTrainer writes it with `bundle_additional_embeddings` (StableDiffusionLoRASaver): the SD
    1.x word's vectors as `bundle_emb.WORD.clip_l`, its output vectors as `.clip_l_out`."""
    tensors = {f"{K}.lora_down.weight": _t(4, 768), f"{K}.lora_up.weight": _t(320, 4), f"{K}.alpha": torch.tensor(4.0)}
    tensors.update({f"bundle_emb.<star>.{part}": _t(3, 768, seed=i) for i, part in enumerate(parts)})
    save_file(tensors, str(path))
    return tensors


def test_onetrainers_sd1_bundle_is_read_and_inspect_names_the_tools_that_read_it(tmp_path):
    tensors = _onetrainer_bundle(tmp_path / "ot.safetensors", "clip_l")
    found = inspect_file(tmp_path / "ot.safetensors")
    assert found.what == "bundle (LoRA + 1 embedding)" and found.words == ["<star>"]
    assert ("bundled word <star>", "3 vectors, SD 1.x (width 768), OneTrainer's layout (clip_l)") in found.facts
    loads = {tool: (ok, why) for tool, ok, why in support(found)}
    assert loads["A1111"][0] is True and loads["ComfyUI"][0] is False
    assert torch.equal(read_lora(tmp_path / "ot.safetensors").embeddings["<star>"].vectors["*"],
                       tensors["bundle_emb.<star>.clip_l"])
    written = convert(found, "comfyui", tmp_path / "out")
    assert [p.name for p, _ in written] == ["ot.safetensors", "<star>.safetensors"]
    assert torch.equal(load_embedding_file(tmp_path / "out" / "<star>.safetensors").vectors["*"],
                       tensors["bundle_emb.<star>.clip_l"])
    with safe_open(str(tmp_path / "out" / "ot.safetensors"), framework="pt") as f:
        assert sorted(f.keys()) == sorted(k for k in tensors if not k.startswith("bundle_emb."))  # noqa: SIM118


def test_onetrainers_bundle_with_output_vectors_is_read_and_a1111_is_said_to_fail_on_it(tmp_path):
    tensors = _onetrainer_bundle(tmp_path / "ot.safetensors", "clip_l", "clip_l_out")
    found = inspect_file(tmp_path / "ot.safetensors")
    assert torch.equal(found.content.embeddings["<star>"].vectors["*"], tensors["bundle_emb.<star>.clip_l"])
    loads = {tool: (ok, why) for tool, ok, why in support(found)}
    assert loads["A1111"] == (False, "A1111 makes an embedding of a bundled word's tensors and refuses the whole "
                                     "file when a single-encoder word has more than one (<star>: clip_l, clip_l_out): "
                                     "--convert a1111 (the LoRA and the words apart)")
    written = convert(found, "a1111", tmp_path / "out")
    assert [p.name for p, _ in written] == ["ot.safetensors", "<star>.pt"]
    assert {tool: ok for tool, ok, _ in support(inspect_file(tmp_path / "out" / "ot.safetensors"))}["A1111"] is True
    assert torch.equal(load_embedding_file(tmp_path / "out" / "<star>.pt").vectors["*"],
                       tensors["bundle_emb.<star>.clip_l"])


def test_a_failed_write_takes_back_the_files_the_conversion_created(tmp_path):
    from oneword.inspect.convert import plan_outputs, write_outputs

    _pivotal(tmp_path / "face.safetensors", word="zqx")
    (outputs,) = plan_outputs([inspect_file(tmp_path / "face.safetensors")], "kohya", tmp_path / "out")
    assert [output.path.name for output in outputs] == ["face.safetensors", "zqx.safetensors"]

    def full_disk(file):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        write_outputs([outputs[0], dataclasses.replace(outputs[1], write=full_disk)])
    assert _files(tmp_path / "out") == []


def test_overwrite_is_only_for_convert(tmp_path, monkeypatch, capsys):
    _pivotal(tmp_path / "face.safetensors", word="zqx")
    code, _, err = run_in_process(monkeypatch, capsys, "inspect", str(tmp_path / "face.safetensors"), "--overwrite")
    assert (code, err) == (1, "error: --overwrite is for --convert TOOL --out DIR\n")
