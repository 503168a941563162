"""`<lora:NAME:WEIGHT>` as A1111 reads it, through the library and the `oneword generate` / `compare` commands:
weights for the text encoder and the UNet, several LoRAs at once, weight 0 bit for bit, a bad sibling file that
stops nothing, and A1111's `Lora hashes` in the PNG text."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from cli_helpers import run_in_process
from lora_helpers import random_lora, unet_output
from PIL import Image
from test_bad_lora_files import Q, bad_files

from oneword.conditioning.tags import parse_tags
from oneword.errors import OnewordError
from oneword.lora.apply import loras_applied
from oneword.lora.library import LoraLibrary
from oneword.lora.names import places
from oneword.lora.tag import LoraTag, wanted
from oneword.lora.write import save_lora


def _tag(text: str):
    return parse_tags(text)[1][0]


def test_weights_are_read_as_a1111_reads_them():
    assert wanted(_tag("<lora:face>")) == ("face", 1.0, 1.0)
    assert wanted(_tag("<lora:face:0.5>")) == ("face", 0.5, 0.5)  # one number: both
    assert wanted(_tag("<lora:face:0.4:0.9>")) == ("face", 0.4, 0.9)  # TE then UNET
    assert wanted(_tag("<lora:face:te=0.3>")) == ("face", 0.3, 0.3)  # the UNet weight defaults to the TE weight
    assert wanted(_tag("<lora:face:unet=0.2>")) == ("face", 1.0, 0.2)
    assert wanted(_tag("<lora:face:0.7:unet=0>")) == ("face", 0.7, 0.0)
    with pytest.raises(OnewordError, match=r"^prompt tag <lora:face:lots>: the text-encoder weight 'lots' is not a "
                                           r"number$"):
        wanted(_tag("<lora:face:lots>"))
    with pytest.raises(OnewordError, match=r"^prompt tag <lora::1>: no LoRA name$"):
        wanted(_tag("<lora::1>"))
    with pytest.raises(OnewordError, match=r"^prompt tag <lora:face:nan>: the weights must be finite numbers$"):
        wanted(_tag("<lora:face:nan>"))


def _effect(prompt: str, library: LoraLibrary):
    return LoraTag().activate([t for t in parse_tags(prompt)[1] if t.type == "lora"], library)


def test_the_text_encoder_and_unet_weights_apply_apart(tiny_sd1, tmp_path):
    from oneword.conditioning.encode import encode_prompt

    save_lora(random_lora(tiny_sd1, "face"), tmp_path / "face.safetensors", {})
    library = LoraLibrary.scan(tmp_path)
    plain_text, plain_unet = encode_prompt(tiny_sd1, "a cat", {}).context, unet_output(tiny_sd1)
    outputs = {}
    for prompt in ("<lora:face:1:0>", "<lora:face:0:1>", "<lora:face:1>", "<lora:face:0>", "<lora:face:te=0>"):
        effect = _effect(prompt, library)
        with effect.text_encoder(tiny_sd1):
            text = encode_prompt(tiny_sd1, "a cat", {}).context  # the prompt as generate encodes it
        with effect.unet(tiny_sd1):
            unet = unet_output(tiny_sd1)
        outputs[prompt] = (torch.equal(text, plain_text), torch.equal(unet, plain_unet))
    assert outputs == {"<lora:face:1:0>": (False, True), "<lora:face:0:1>": (True, False),
                       "<lora:face:1>": (False, False), "<lora:face:0>": (True, True),
                       "<lora:face:te=0>": (True, True)}  # the UNet weight follows the text encoder's
    assert library.notes == []
    assert torch.equal(encode_prompt(tiny_sd1, "a cat", {}).context, plain_text)  # nothing left behind
    with pytest.raises(OnewordError, match=r"^the prompt asks for LoRA 'face' but no LoRA folder is given$"):
        _effect("<lora:face:1>", None)


def test_several_loras_add_their_changes(tiny_sd1):
    a, b = random_lora(tiny_sd1, "a", seed=1), random_lora(tiny_sd1, "b", seed=2, rank=2, alpha=1.0)
    module = places(tiny_sd1)[Q].module
    x = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = torch.nn.functional.linear(
            x, module.weight + 0.5 * a.layers[Q].delta() - 2.0 * b.layers[Q].delta(), module.bias)
        with loras_applied(tiny_sd1, [(a, 0.5, 0.5), (b, 3.0, -2.0)]):
            got = module(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def _draw(monkeypatch, capsys, label: str, prompt: str, *more: str) -> tuple[Image.Image, str]:
    code, out, err = run_in_process(monkeypatch, capsys, "generate", "--model", "tiny-sd1", "--seed", "7", "--steps",
                                    "2", "--out", label, "--lora-dir", "models/Lora", "--prompt", prompt, *more)
    assert code == 0, err
    return Image.open(out.strip()), err


def test_generate_draws_with_a_lora_beside_bad_files(tiny_sd1, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad_files(tmp_path / "models" / "Lora" / "broken", tiny_sd1)  # in a subfolder: found all the same
    save_lora(random_lora(tiny_sd1, "face", size=0.5), tmp_path / "models" / "Lora" / "face.safetensors", {})
    plain, _ = _draw(monkeypatch, capsys, "plain", "a red ball")
    zero, err_zero = _draw(monkeypatch, capsys, "zero", "a red ball<lora:face:0>")
    one, err_one = _draw(monkeypatch, capsys, "one", "a red ball<lora:face:1>")
    half, err_half = _draw(monkeypatch, capsys, "half", "a red ball<lora:face:1> <lora:nan:1> <lora:gone>")
    assert np.array_equal(np.asarray(plain), np.asarray(zero))  # weight 0: no LoRA, bit for bit
    assert not np.array_equal(np.asarray(plain), np.asarray(one))
    assert np.array_equal(np.asarray(one), np.asarray(half))  # the unusable ones are left out
    assert err_zero == err_one == ""
    assert err_half.splitlines() == ["note: <lora:nan>: models/Lora/broken/nan.safetensors: not usable: "
                                     f"{Q}.lora_down.weight holds NaN or infinite values; left out",
                                     "note: <lora:gone>: no such LoRA in models/Lora (it has: checkpoint, code, cut, "
                                     "face, good, nan, text); left out"]
    digest = (tmp_path / "models" / "Lora" / "face.safetensors").read_bytes()
    header = int.from_bytes(digest[:8], "little")
    short = hashlib.sha256(digest[8 + header:]).hexdigest()[:12]  # kohya's sshs_model_hash, as A1111 shows it
    assert one.text["parameters"].endswith(f', Lora hashes: "face: {short}"')
    assert half.text["parameters"].endswith(f', Lora hashes: "face: {short}"')


def test_lora_hashes_of_files_without_kohya_s_hash(tiny_sd1, tmp_path, monkeypatch, capsys):
    from safetensors.torch import save_file

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "models" / "Lora"
    folder.mkdir(parents=True)
    lora = random_lora(tiny_sd1, "x")
    tensors = {f"{k}.lora_{side}.weight": getattr(layer, side) for k, layer in lora.layers.items()
               for side in ("down", "up")}
    save_file(tensors, str(folder / "bare.safetensors"), {"ss_output_name": "bare"})
    torch.save(tensors, folder / "old.pt")
    image, _ = _draw(monkeypatch, capsys, "out", "a ball <lora:bare:0.5> <lora:OLD:0.5>")
    data = (folder / "bare.safetensors").read_bytes()
    after_header = hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]
    whole = hashlib.sha256((folder / "old.pt").read_bytes()).hexdigest()[:12]
    assert image.text["parameters"].endswith(f', Lora hashes: "bare: {after_header}, OLD: {whole}"')


def test_compare_applies_the_prompt_s_lora_in_every_column(tiny_sd1, tmp_path, monkeypatch, capsys):
    from oneword.embeddings.embedding import Embedding
    from oneword.embeddings.formats import save_embedding

    monkeypatch.chdir(tmp_path)
    save_lora(random_lora(tiny_sd1, "face", size=0.5), tmp_path / "lo" / "face.safetensors", {})
    save_embedding(Embedding("w-5", {"*": torch.ones(1, 64)}, step=5), tmp_path / "w-5.pt")
    grids = {}
    for label, tag in (("plain", ""), ("zero", " <lora:face:0>"), ("one", " <lora:face:1>")):
        code, _, err = run_in_process(monkeypatch, capsys, "compare", "w-5.pt", "--word", "w", "--prompt",
                                      f"a photo of w{tag}", "--model", "tiny-sd1", "--seed", "3", "--steps", "2",
                                      "--lora-dir", "lo", "--out", f"{label}.png")
        assert code == 0, err
        grids[label] = Image.open(tmp_path / f"{label}.png")
    pixels = {label: np.asarray(grid.convert("RGB")) for label, grid in grids.items()}
    assert np.array_equal(pixels["plain"], pixels["zero"])
    columns = [pixels["one"][24:, c * 64:(c + 1) * 64] for c in range(2)]
    assert not np.array_equal(pixels["plain"][24:, :64], columns[0])
    assert not np.array_equal(pixels["plain"][24:, 64:], columns[1])
    assert ", Lora hashes: " in grids["one"].text["parameters"]


def test_lora_list_shows_each_file_read_or_skipped(tiny_sd1, tmp_path, monkeypatch, capsys):
    lines = bad_files(tmp_path / "lora", tiny_sd1)
    code, out, err = run_in_process(monkeypatch, capsys, "lora", "list", "--model", "tiny-sd1", "--lora-dir",
                                    str(tmp_path / "lora"))
    assert code == 0, err
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│") and line.split("│")[1].strip()}
    assert rows["good.safetensors"] == ["good", "LoRA", "4", "60/60", "ok"]
    for name, line in lines.items():
        file = next(f for f in rows if f.startswith(name + "."))
        reason = line.split(": ", 1)[1]  # without the file's path, which the table's first column gives
        assert rows[file][4].startswith(f"skipped: {reason[:30]}") and rows[file][0] == name
    assert out.strip().splitlines()[-1] == "1 loaded, 5 skipped"


def test_the_web_ui_s_generate_tab_draws_from_its_lora_folder_and_notes_what_it_left_out(tiny_sd1, tmp_path):
    from pathlib import Path

    from oneword.ui.models import ModelCache
    from oneword.ui.paths import Workspace
    from oneword.ui.tabs import generate as tab

    save_lora(random_lora(tiny_sd1, "face", size=0.5), tmp_path / "loras" / "face.safetensors", {})
    space, models, specs = Workspace.at(tmp_path), ModelCache(), tab.generate_specs()
    drawn = {}
    for label, prompt in (("plain", "a red ball"), ("one", "a red ball <lora:face:1> <lora:gone>")):
        form = {"prompt": prompt, "model": "tiny-sd1", "steps": 2, "seed": 7, "out": label, "lora_dir": "loras"}
        values = [form.get(s.name, s.default) for s in specs]
        values = [v.as_posix() if isinstance(v, Path) else "" if v is None else v for v in values]
        note, paths, parameters = tab.generate(space, models, specs, values)
        drawn[label] = (note, np.asarray(Image.open(paths[0])), parameters)
    assert not np.array_equal(drawn["plain"][1], drawn["one"][1])
    assert drawn["one"][0] == (f"note: <lora:gone>: no such LoRA in {tmp_path / 'loras'} (it has: face); left out"
                               "\n\nwrote one/00000-7.png")
    assert ", Lora hashes: " in drawn["one"][2]
    assert tab.available(space, "embeddings", "hypernetworks", "loras").endswith("LoRAs: `<lora:face:1>`")
