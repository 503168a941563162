"""Hostile LoRA files: damaged copies of every LoRA layout oneword reads (kohya LoRA/LoCon as safetensors, zip `.pt`
and older-format `.ckpt`, Tucker LoCon, PEFT, older diffusers `.bin`, LoHa, LoKr with absurd factors, SD 1.x, SDXL and
OneTrainer bundles) and two costly files, put in a scanned folder, named in prompts, inspected and converted. Each
is listed, applied or converted, or skipped with a one-line reason, within bounded memory and without computing a
weight change larger than the model's largest layer; no other exception than OnewordError ever comes out."""

from __future__ import annotations

import json
import math
import random
import traceback
from pathlib import Path

import safetensors.torch
import torch
from cli_helpers import run_in_process
from mutations import MEMORY_GUARD, edit_pickle_tensors, edit_safetensors_header, flip_bits, peak_bytes, truncate

SEED = 19
LORA_COPIES = 12
"""Damaged copies of each LoRA file kind (twelve kinds): with the originals and the two costly files, 158 files."""
ATTENTION = "down_blocks.0.attentions.0.transformer_blocks.0.attn1"
"""A UNet attention of the tiny SD 1.x model: its to_q, to_k, to_v and to_out.0 are Linear 32 -> 32."""
CONV = "lora_unet_down_blocks_0_resnets_0_conv1"
"""A 3x3 convolution 32 -> 32 of the tiny SD 1.x model."""
TE = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
"""A text-encoder Linear 64 -> 64 of the tiny SD 1.x model."""


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 0.1


def _kohya_key(projection: str) -> str:
    return "lora_unet_" + f"{ATTENTION}.{projection}".replace(".", "_")


def _kohya(rank: int = 4) -> dict[str, torch.Tensor]:
    """kohya's LoRA over four UNet projections and one text-encoder projection."""
    tensors = {}
    for i, (key, width) in enumerate([*((_kohya_key(p), 32) for p in ("to_q", "to_k", "to_v", "to_out_0")),
                                      (TE, 64)]):
        tensors |= {f"{key}.lora_down.weight": _randn(rank, width, seed=i),
                    f"{key}.lora_up.weight": _randn(width, rank, seed=i + 50), f"{key}.alpha": torch.tensor(2.0)}
    return tensors


def _lora_originals() -> dict[str, tuple[dict[str, torch.Tensor], dict[str, str]]]:
    """File name -> (tensors, header metadata): one valid file of every LoRA layout oneword reads."""
    kohya = _kohya()
    q, k = _kohya_key("to_q"), _kohya_key("to_k")
    peft = {f"unet.{ATTENTION}.to_{p}.lora_{side}.weight": _randn(*shape, seed=i)
            for i, p in enumerate("qkv") for side, shape in (("A", (4, 32)), ("B", (32, 4)))}
    old = {f"unet.{ATTENTION}.processor.to_{p}_lora.{side}.weight": _randn(*shape, seed=i)
           for i, p in enumerate("qkv") for side, shape in (("down", (4, 32)), ("up", (32, 4)))}
    loha = {f"{q}.hada_w1_a": _randn(32, 4, seed=1), f"{q}.hada_w1_b": _randn(4, 32, seed=2),
            f"{q}.hada_w2_a": _randn(32, 4, seed=3), f"{q}.hada_w2_b": _randn(4, 32, seed=4),
            f"{q}.alpha": torch.tensor(4.0),
            f"{CONV}.hada_t1": _randn(4, 4, 3, 3, seed=5), f"{CONV}.hada_w1_a": _randn(4, 32, seed=6),
            f"{CONV}.hada_w1_b": _randn(4, 32, seed=7), f"{CONV}.hada_t2": _randn(4, 4, 3, 3, seed=8),
            f"{CONV}.hada_w2_a": _randn(4, 32, seed=9), f"{CONV}.hada_w2_b": _randn(4, 32, seed=10)}
    lokr = {f"{q}.lokr_w1": _randn(4, 4, seed=1), f"{q}.lokr_w2_a": _randn(8, 2, seed=2),
            f"{q}.lokr_w2_b": _randn(2, 8, seed=3), f"{q}.alpha": torch.tensor(2.0),
            f"{k}.lokr_w1": _randn(2, 2, seed=4), f"{k}.lokr_w2": _randn(16, 16, seed=5)}
    locon = {**kohya, f"{CONV}.lora_down.weight": _randn(4, 32, 3, 3, seed=6),
             f"{CONV}.lora_up.weight": _randn(32, 4, 1, 1, seed=7), f"{CONV}.alpha": torch.tensor(1.0)}
    tucker = {**kohya, f"{CONV}.lora_down.weight": _randn(4, 32, 1, 1, seed=8),
              f"{CONV}.lora_mid.weight": _randn(4, 4, 3, 3, seed=9),
              f"{CONV}.lora_up.weight": _randn(32, 4, 1, 1, seed=10)}
    steps = {"ss_steps": "120", "ss_output_name": "x", "modelspec.trigger_phrase": "xyz"}
    adapter = {"lora_adapter_metadata": json.dumps({"unet.lora_alpha": 8, "unet.r": 4,
                                                    "unet.alpha_pattern": {"to_k": 2}})}
    return {
        "kohya.safetensors": (kohya, steps), "kohya-pickle.pt": (kohya, {}), "kohya-legacy.ckpt": (kohya, {}),
        "locon.safetensors": (locon, steps),
        "tucker.safetensors": (tucker, {}), "peft.safetensors": (peft, adapter), "old-diffusers.bin": (old, {}),
        "loha.safetensors": (loha, {}), "lokr.safetensors": (lokr, {}),
        "bundle-sd1.safetensors": ({**kohya, "bundle_emb.xyz.string_to_param.*": _randn(2, 64, seed=11)}, steps),
        "bundle-sdxl.safetensors": ({**kohya, "bundle_emb.xyz.clip_l": _randn(2, 64, seed=12),
                                     "bundle_emb.xyz.clip_g": _randn(2, 128, seed=13)}, steps),
        "bundle-onetrainer.safetensors": ({**kohya, "bundle_emb.xyz.clip_l": _randn(2, 64, seed=14)}, steps),
    }


ADAPTER_METADATA = ['{"unet.alpha_pattern": [1, 2]}', '{"unet.lora_alpha": "eight"}', "[1]", "{unet",
                    '{"unet.lora_alpha": 1e999}', '{"unet.alpha_pattern": {"to_q": null}}', "1" * 5000,
                    '{"unet.lora_alpha": ' + "9" * 5000 + "}", "[" * 100_000]
STEPS = ["9" * 5000, "\u00b2", "-1", "1e3", ""]


def _edit_lora(tensors: dict[str, torch.Tensor], metadata: dict[str, str], pickled: bool,
               rng: random.Random) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """One thing a hostile or careless writer gets wrong in a LoRA: a part of another rank, shape or type, an
    alpha that is a vector, values no trained file has, absurd LyCORIS factors, a garbled header entry."""
    tensors, metadata = dict(tensors), dict(metadata)
    key = rng.choice(sorted(tensors))
    tensor = tensors[key]
    choice = rng.choice(["alpha-vector", "rank-0", "scalar", "other-rank", "float8", "huge", "large", "nan",
                         "absurd-lokr", "int", "complex", "bool", "steps", "adapter", "deeper", "bundle", "expanded"])
    if choice == "alpha-vector":
        tensors[key.rsplit(".", 1)[0].removesuffix(".lora_down").removesuffix(".lora_up") + ".alpha"] = torch.ones(3)
    elif choice == "rank-0":
        tensors[key] = torch.ones(0, *tensor.shape[1:])
    elif choice == "scalar":
        tensors[key] = torch.tensor(1.0)
    elif choice == "other-rank":
        tensors[key] = torch.ones(tensor.shape[0] + 1, *tensor.shape[1:]) * 0.1 if tensor.dim() else torch.ones(2)
    elif choice == "float8":
        tensors = {k: t.to(torch.float8_e4m3fn) for k, t in tensors.items()}
    elif choice in ("huge", "large", "nan"):
        tensors[key] = tensor.float() + {"huge": 3e38, "large": 1e5, "nan": float("nan")}[choice]
    elif choice == "absurd-lokr":  # 180 KB of factors asking for a 25,000 x 20,000 weight change
        tensors[f"{_kohya_key('to_v')}.lokr_w1"] = torch.full((100, 100), 0.01)
        tensors[f"{_kohya_key('to_v')}.lokr_w2"] = torch.full((250, 200), 0.01)
    elif choice in ("int", "complex", "bool"):
        tensors[key] = tensor.to({"int": torch.int64, "complex": torch.complex64, "bool": torch.bool}[choice])
    elif choice == "steps":
        metadata["ss_steps"] = rng.choice(STEPS)
    elif choice == "adapter":
        metadata["lora_adapter_metadata"] = rng.choice(ADAPTER_METADATA)
    elif choice == "deeper":
        tensors[key] = tensor.reshape(1, 1, *tensor.shape)
    elif choice == "bundle":
        tensors[rng.choice(["bundle_emb.xyz.clip_l", "bundle_emb..clip_l", "bundle_emb.w.string_to_param.*",
                            "bundle_emb.xyz.clip_l_out", "bundle_emb.w.t5"])] = rng.choice(
            [torch.ones(2, 3, 4), torch.tensor(1.0), torch.ones(0, 64), torch.ones(100, 64), torch.ones(2, 64)])
    elif pickled:  # a few bytes that claim a large tensor
        tensors[key] = torch.full((1,) * max(tensor.dim(), 1), 0.1).expand(4096, *tensor.shape[1:])
    if pickled:
        return tensors, metadata
    return {k: t.contiguous() for k, t in tensors.items()}, metadata


def _save(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> None:
    if path.suffix == ".safetensors":
        safetensors.torch.save_file(tensors, str(path), metadata)
    else:  # `.ckpt` in torch's older format (not a zip), as files from before torch 1.6 are
        torch.save(tensors, path, _use_new_zipfile_serialization=path.suffix != ".ckpt")


def _lora_folder(folder: Path, rng: random.Random) -> dict[Path, str]:
    """The valid LoRA files, LORA_COPIES damaged copies of each, and two costly files: file -> how it was made."""
    valid = folder.parent / "valid-lora"
    valid.mkdir(parents=True)
    folder.mkdir(parents=True)
    made = {}
    for name, (tensors, metadata) in _lora_originals().items():
        original = valid / name
        _save(tensors, metadata, original)
        data = original.read_bytes()
        stem, suffix = original.stem, original.suffix
        (folder / name).write_bytes(data)
        made[folder / name] = "original"
        families = [truncate, flip_bits, edit_pickle_tensors if suffix != ".safetensors" else edit_safetensors_header]
        for i in range(LORA_COPIES):
            target = folder / f"{stem}-{i:02}{suffix}"
            if i % 2:  # half of the copies damaged in their bytes, half in what they say
                family = families[i // 2 % len(families)]
                target.write_bytes(family(data, rng))
            else:
                family = _edit_lora
                _save(*_edit_lora(tensors, metadata, suffix != ".safetensors", rng), target)
            made[target] = family.__name__
    many = {f"lora_unet_x{i}.lora_down.weight": torch.ones(1) for i in range(20_001)}
    safetensors.torch.save_file(many, str(folder / "many-tensors.safetensors"))
    made[folder / "many-tensors.safetensors"] = "costly"
    (folder / "big-header.safetensors").write_bytes((64 << 20).to_bytes(8, "little") + b"{}")
    made[folder / "big-header.safetensors"] = "costly"
    return made


def _changes_bounded(monkeypatch, model) -> None:
    """Fail at once, before it is computed, when a LoRA layer's weight change would be larger than the model's
    largest layer (what a file of a few KB of LyCORIS factors can ask for: gigabytes)."""
    from oneword.lora.lycoris import LohaLayer, LokrLayer, TuckerLoconLayer
    from oneword.lora.names import places
    from oneword.lora.network import LoraLayer

    largest = max(place.module.weight.numel() for place in places(model).values())
    for kind in (LoraLayer, LohaLayer, LokrLayer, TuckerLoconLayer):

        def bounded(self, _real=kind.delta):
            size = math.prod(self.shape)
            assert size <= largest, f"a weight change of {size} numbers, the model's largest layer has {largest}"
            return _real(self)

        monkeypatch.setattr(kind, "delta", bounded)


def test_every_damaged_lora_is_listed_applied_and_inspected_or_skipped_with_a_reason(
        tmp_path, tiny_sd1, monkeypatch, capsys):
    from oneword.lora.fit import fit
    from oneword.lora.library import LoraLibrary
    from oneword.lora.survey import survey

    monkeypatch.chdir(tmp_path)
    made = _lora_folder(tmp_path / "lora", random.Random(SEED + 3))
    _changes_bounded(monkeypatch, tiny_sd1)
    before = peak_bytes()
    problems: list[str | None] = []
    library = LoraLibrary.scan(tmp_path / "lora")
    assert sorted(library.paths.values()) == sorted(made)
    for key, path in library.paths.items():
        try:
            entry = library.entry(key)
            if entry.lora is not None:
                fit(entry.lora, tiny_sd1)
            elif "\n" in entry.problem or not entry.problem.startswith(f"{path}: "):
                problems.append(f"{path.name}: not a one-line reason naming the file: {entry.problem!r}")
        except Exception:  # noqa: BLE001  (the test reports every escaping error with the file that caused it)
            problems.append(f"{path.name} ({made[path]}): {traceback.format_exc(limit=-3)}")
    assert [p for p in problems if p] == []
    rows = survey(tmp_path / "lora", tiny_sd1)
    assert peak_bytes() - before < MEMORY_GUARD
    status = {row.path.name: row.status for row in rows}
    assert sorted(status) == sorted(path.name for path in made)
    assert all(s == "ok" or s.startswith("ok; ") or s.startswith("skipped: ") for s in status.values())
    assert all(status[path.name] == "ok" for path, how in made.items() if how == "original"), status
    assert status["many-tensors.safetensors"].startswith("skipped: 20001 tensors, more than any LoRA has")
    assert status["big-header.safetensors"].startswith("skipped: a safetensors header of 67108864 bytes, more than")
    skipped = {path for path in made if status[path.name].startswith("skipped: ")}
    assert {made[path] for path in skipped} >= {"truncate", "flip_bits", "_edit_lora", "edit_safetensors_header",
                                                "edit_pickle_tensors", "costly"}
    assert len(skipped) < len(made)

    # the command line: one listing, and one picture with every file's tag
    code, out, err = run_in_process(monkeypatch, capsys, "lora", "list", "--model", "tiny-sd1", "--lora-dir",
                                    "lora")
    assert code == 0, err
    assert out.strip().splitlines()[-1] == f"{len(made) - len(skipped)} loaded, {len(skipped)} skipped"
    tags = " ".join(f"<lora:{path.stem}:1>" for path in sorted(made))
    code, out, err = run_in_process(monkeypatch, capsys, "generate", "--model", "tiny-sd1", "--steps", "1",
                                    "--prompt", f"a ball {tags}", "--lora-dir", "lora", "--out", "drawn")
    assert code == 0, err
    left_out = [line for line in err.splitlines() if line.endswith("; left out")]
    assert all(line.startswith("note: ") for line in err.splitlines()), err
    assert len(left_out) == len(skipped) and len(list((tmp_path / "drawn").glob("*.png"))) == 1


def test_every_damaged_lora_is_inspected_and_converted_or_refused_in_one_line(tmp_path, tiny_sd1, monkeypatch,
                                                                                capsys):
    monkeypatch.chdir(tmp_path)
    made = _lora_folder(tmp_path / "lora", random.Random(SEED + 4))
    _changes_bounded(monkeypatch, tiny_sd1)
    problems = []
    tools = ["kohya", "a1111", "comfyui", "diffusers"]
    before = peak_bytes()
    for i, path in enumerate(sorted(made)):
        code, out, err = run_in_process(monkeypatch, capsys, "inspect", str(path))
        if code != 0 and not (code == 1 and err.startswith(f"error: {path}: ") and len(err.splitlines()) == 1
                              and "--debug for the traceback" not in err):
            problems.append(f"{path.name} ({made[path]}): inspect: {err.strip()[-600:]}")
        if code != 0 or "  what: unknown" in out:
            continue
        tool = tools[i % len(tools)]
        code, out, err = run_in_process(monkeypatch, capsys, "inspect", str(path), "--convert", tool, "--out",
                                        f"out-{i}")
        if code != 0 and not (code == 1 and err.startswith("error: ") and len(err.splitlines()) == 1
                              and "--debug for the traceback" not in err):
            problems.append(f"{path.name} ({made[path]}): --convert {tool}: {err.strip()[-600:]}")
    assert peak_bytes() - before < MEMORY_GUARD
    assert problems == [], "\n".join(problems)


def test_a_pickled_bundle_converts_for_diffusers_into_its_lora_and_its_word(tmp_path, monkeypatch, capsys):
    path = tmp_path / "bundle.pt"
    lora = _kohya()
    torch.save({**lora, "bundle_emb.xyz.string_to_param.*": _randn(2, 64, seed=11)}, path)
    code, _, err = run_in_process(monkeypatch, capsys, "inspect", str(path), "--convert", "diffusers", "--out",
                                  str(tmp_path / "out"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bundle.safetensors", "xyz.safetensors"]
    written = safetensors.torch.load_file(tmp_path / "out" / "bundle.safetensors")
    assert written.keys() == lora.keys() and all(torch.equal(written[k], lora[k]) for k in lora)
