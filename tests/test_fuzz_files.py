"""Hostile files: a few hundred damaged copies of every kind of file oneword reads (embeddings of each layout,
embedding images, hypernetworks, single-file models, LoRAs of every layout and bundles), put in scanned folders,
named in prompts, inspected and converted, and given as `--model`. Every
scan ends, within a bounded time and memory, with each file loaded or skipped with a one-line reason; no other
exception than OnewordError ever comes out."""

from __future__ import annotations

import json
import math
import random
import resource
import traceback
from pathlib import Path

import pytest
import safetensors.torch
import torch
from cli_helpers import run_in_process
from mutations import edit_pickle_tensors, edit_png, edit_safetensors_header, flip_bits, truncate
from PIL import Image
from time_guard import time_limit

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.embeddings.library import scan_embeddings
from oneword.embeddings.png import embed_in_png, write_png_embedding
from oneword.errors import OnewordError
from oneword.hypernetworks.formats import save_hypernetwork
from oneword.hypernetworks.hypernetwork import HypernetworkSettings, new_hypernetwork
from oneword.hypernetworks.library import HypernetworkLibrary

SEED = 19
EMBEDDING_COPIES = 50
"""Damaged copies of each embedding file kind (eight kinds): with the hypernetworks and models, 586 files."""
HYPERNETWORK_COPIES = 80
MODEL_COPIES = 8
MEMORY_GUARD = 1 << 30
"""Bytes the peak memory may grow by over a whole scan: a guard against decompression bombs, not a measure."""


def _vectors(n: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def _embedding_files(folder: Path) -> list[Path]:
    """One valid file of every embedding layout oneword reads."""
    folder.mkdir(parents=True)
    single = Embedding("single", {"*": _vectors(2, 64, 0)}, step=40, sd_checkpoint="abcdef0123")
    sdxl = Embedding("xl", {"clip_l": _vectors(2, 64, 1), "clip_g": _vectors(2, 128, 2)}, step=7)
    save_embedding(single, folder / "a1111.pt")
    save_embedding(single, folder / "single.safetensors")
    save_embedding(sdxl, folder / "sdxl.pt")
    save_embedding(sdxl, folder / "sdxl.safetensors")
    torch.save({"<cat-toy>": _vectors(1, 64, 3)[0]}, folder / "learned_embeds.bin")
    safetensors.torch.save_file({"emb_params": _vectors(3, 64, 4)}, folder / "kohya.safetensors")
    preview = Image.new("RGB", (32, 32), (90, 60, 30))
    write_png_embedding(single, folder / "text.png", preview)
    embed_in_png(preview, Embedding("pixels", {"*": _vectors(1, 64, 5)})).save(folder / "pixels.png")
    return sorted(folder.iterdir())


def _families(path: Path) -> list:
    """The mutations that fit a file: cut, flipped, and edited as its format allows."""
    suffix = path.suffix.lower()
    edit = {".safetensors": edit_safetensors_header, ".png": edit_png}.get(suffix, edit_pickle_tensors)
    return [truncate, flip_bits, edit, edit]


def _damaged(originals: list[Path], folder: Path, copies: int, rng: random.Random) -> dict[Path, str]:
    """`copies` damaged copies of each original in `folder` (the originals too): file -> how it was made."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for original in originals:
        data = original.read_bytes()
        stem = f"{original.stem}-{original.suffix.lstrip('.')}"  # style.pt and style.safetensors: two stems
        target = folder / f"original-{stem}{original.suffix}"
        target.write_bytes(data)
        made[target] = "original"
        families = _families(original)
        for i in range(copies):
            family = families[i % len(families)]
            target = folder / f"{stem}-{family.__name__}-{i:03}{original.suffix}"
            target.write_bytes(family(data, rng))
            made[target] = family.__name__
    return made


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _one_line(error: OnewordError, path: Path) -> str | None:
    """What is wrong with an error message: it must be one line that names the file."""
    text = str(error)
    if "\n" in text or str(path) not in text:
        return f"{path.name}: not a one-line message naming the file: {text!r}"
    return None


def test_every_damaged_embedding_is_loaded_or_skipped_with_a_reason(tmp_path, tiny_sd1):
    rng = random.Random(SEED)
    made = _damaged(_embedding_files(tmp_path / "valid"), tmp_path / "embeddings", EMBEDDING_COPIES, rng)
    before = _peak_bytes()
    with time_limit(120):
        library = scan_embeddings(tmp_path / "embeddings", tiny_sd1)
    assert _peak_bytes() - before < MEMORY_GUARD
    assert sorted(e.path for e in library.entries) == sorted(made)
    bad = [f"{e.path.name}: empty reason" for e in library.entries
           if e.reason is not None and (not e.reason.strip() or "\n" in e.reason)]
    assert bad == []
    status = {e.path.name: e.reason for e in library.entries}
    assert status["original-a1111-pt.pt"] is None and status["original-text-png.png"] is None
    assert status["original-sdxl-pt.pt"].startswith("an SDXL embedding (clip_l, clip_g) does not fit")
    families = {how for path, how in made.items() if status[path.name] is not None}
    assert {"truncate", "flip_bits", "edit_pickle_tensors", "edit_png", "edit_safetensors_header"} <= families
    assert len(library.skipped) < len(made)  # some damage is harmless (a flipped bit in the numbers)


def _hypernetwork_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    hypernetwork = new_hypernetwork("style", [64, 32], HypernetworkSettings(), seed=0)
    for suffix in (".pt", ".safetensors"):
        save_hypernetwork(hypernetwork, folder / f"style{suffix}")
    return sorted(folder.iterdir())


def test_every_damaged_hypernetwork_is_loaded_or_refused_in_one_line(tmp_path):
    rng = random.Random(SEED + 1)
    made = _damaged(_hypernetwork_files(tmp_path / "valid"), tmp_path / "hypernetworks", HYPERNETWORK_COPIES, rng)
    before = _peak_bytes()
    problems, refused = [], 0
    with time_limit(120):
        library = HypernetworkLibrary.scan(tmp_path / "hypernetworks")
        assert sorted(library.paths.values()) == sorted(made)
        for name, path in library.paths.items():
            try:
                library.get(name)
            except OnewordError as error:
                refused += 1
                problems.append(_one_line(error, path))
            except Exception:  # noqa: BLE001  (the test reports every escaping error with the file that caused it)
                problems.append(f"{path.name} ({made[path]}): {traceback.format_exc(limit=-3)}")
    assert _peak_bytes() - before < MEMORY_GUARD
    assert [p for p in problems if p] == []
    assert 0 < refused < len(made)


def test_damaged_models_are_loaded_or_refused_in_one_line(tmp_path, tiny_sd1, monkeypatch, capsys):
    from oneword import load_base
    from oneword.models.export import save_single_file

    rng = random.Random(SEED + 2)
    valid = tmp_path / "valid"
    valid.mkdir()
    originals = [valid / "tiny.safetensors", valid / "tiny.ckpt"]
    for path in originals:
        save_single_file(tiny_sd1, path)
    problems: list[str | None] = []
    samples: dict[str, list[Path]] = {}
    with time_limit(240):
        for original in originals:
            data, families = original.read_bytes(), _families(original)
            for i in range(MODEL_COPIES):
                family = families[i % len(families)]
                path = tmp_path / f"model-{family.__name__}-{i}{original.suffix}"
                path.write_bytes(family(data, rng))
                try:
                    load_base(path)
                except OnewordError as error:
                    problems.append(_one_line(error, path))
                    kept = samples.setdefault(original.suffix, [])
                    if len(kept) < 2:  # kept for the command line below
                        kept.append(path)
                        continue
                except Exception:  # noqa: BLE001  (the test reports every escaping error with the file that caused it)
                    problems.append(f"{path.name}: {traceback.format_exc(limit=-3)}")
                path.unlink()
    assert [p for p in problems if p] == []
    (tmp_path / "embeddings").mkdir()
    for path in [p for kept in samples.values() for p in kept]:  # `--model` on the command line, in this process
        code, out, err = run_in_process(monkeypatch, capsys, "embeddings", "list", "--model", str(path),
                                        "--embeddings-dir", str(tmp_path / "embeddings"))
        assert code == 1 and len(err.splitlines()) == 1 and err.startswith(f"error: {path}: "), err
        assert "--debug for the traceback" not in err


@pytest.mark.parametrize(("data", "detail"), [
    (b"\x80\x02s.", "damaged pickle data"),  # an opcode with nothing on the stack
    (b"\x80\x02h\x05.", "damaged pickle data"),  # a memo entry that was never stored
    (b"\x80\x02", "damaged pickle data"),  # cut right after the protocol: an EOFError without a message
])
def test_damaged_pickle_opcodes_are_one_line(tmp_path, data, detail):
    from oneword.embeddings.formats import EmbeddingFileError, load_embedding_file

    path = tmp_path / "damaged.pt"
    path.write_bytes(data)
    with pytest.raises(EmbeddingFileError) as error:
        load_embedding_file(path)
    assert error.value.problem == f"not a readable PyTorch file ({detail})"


def test_hypernetwork_settings_of_the_wrong_kind_are_one_line(tmp_path):
    import safetensors.torch as st

    from oneword.hypernetworks.formats import a1111_dict, load_hypernetwork

    hypernetwork = new_hypernetwork("style", [64], HypernetworkSettings(), seed=0)
    data = a1111_dict(hypernetwork)
    torch.save({**data, "name": torch.ones(3)}, tmp_path / "tensor-name.pt")
    assert load_hypernetwork(tmp_path / "tensor-name.pt").name == "tensor-name"
    torch.save({**data, "layer_structure": torch.ones(3)}, tmp_path / "tensor-structure.pt")
    with pytest.raises(OnewordError) as error:
        load_hypernetwork(tmp_path / "tensor-structure.pt")
    assert str(error.value).startswith(f"{tmp_path / 'tensor-structure.pt'}: unreadable settings (Boolean value")
    path = tmp_path / "digits.safetensors"
    save_hypernetwork(hypernetwork, path)
    tensors = st.load_file(path)
    with st.safe_open(str(path), "pt") as f:
        metadata = {**f.metadata(), "step": "9" * 5000}
    st.save_file(tensors, path, metadata=metadata)
    with pytest.raises(OnewordError) as error:
        load_hypernetwork(path)
    assert str(error.value) == f"{path}: header entry 'step' is not JSON"


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
    before = _peak_bytes()
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
    assert _peak_bytes() - before < MEMORY_GUARD
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
    before = _peak_bytes()
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
    assert _peak_bytes() - before < MEMORY_GUARD
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
