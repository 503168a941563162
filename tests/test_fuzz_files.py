"""Hostile files: a few hundred damaged copies of every kind of file oneword reads (embeddings of each layout,
embedding images, hypernetworks, single-file models), put in scanned folders and given as `--model`; the LoRA
readers have theirs in tests/lora/test_fuzz_lora_files.py. Every
scan ends, within a bounded time and memory, with each file loaded or skipped with a one-line reason; no other
exception than OnewordError ever comes out."""

from __future__ import annotations

import random
import traceback
from pathlib import Path

import pytest
import safetensors.torch
import torch
from cli_helpers import run_in_process
from mutations import (
    MEMORY_GUARD,
    edit_pickle_tensors,
    edit_png,
    edit_safetensors_header,
    flip_bits,
    peak_bytes,
    truncate,
)
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


def _one_line(error: OnewordError, path: Path) -> str | None:
    """What is wrong with an error message: it must be one line that names the file."""
    text = str(error)
    if "\n" in text or str(path) not in text:
        return f"{path.name}: not a one-line message naming the file: {text!r}"
    return None


def test_every_damaged_embedding_is_loaded_or_skipped_with_a_reason(tmp_path, tiny_sd1):
    rng = random.Random(SEED)
    made = _damaged(_embedding_files(tmp_path / "valid"), tmp_path / "embeddings", EMBEDDING_COPIES, rng)
    before = peak_bytes()
    with time_limit(120):
        library = scan_embeddings(tmp_path / "embeddings", tiny_sd1)
    assert peak_bytes() - before < MEMORY_GUARD
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


def test_every_damaged_embedding_is_inspected_or_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """`oneword inspect` reads a safetensors embedding from its header with numpy and any other file with the full
    readers: either way a damaged file is described or refused in one line, never a traceback."""
    rng = random.Random(SEED + 1)
    made = _damaged(_embedding_files(tmp_path / "valid"), tmp_path / "embeddings", EMBEDDING_COPIES // 5, rng)
    problems, refused = [], 0
    for path, how in sorted(made.items()):
        code, out, err = run_in_process(monkeypatch, capsys, "inspect", str(path))
        if code == 0 and out.strip():
            continue
        refused += 1
        if code == 0 or not err.strip() or len(err.strip().splitlines()) != 1 or "Traceback" in err:
            problems.append(f"{path.name} ({how}): exit {code}: {err.strip()[-600:]}")
    assert problems == []
    assert 0 < refused < len(made)  # some damage is harmless, some is refused
    assert any(path.suffix == ".safetensors" for path in made)


def _hypernetwork_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    hypernetwork = new_hypernetwork("style", [64, 32], HypernetworkSettings(), seed=0)
    for suffix in (".pt", ".safetensors"):
        save_hypernetwork(hypernetwork, folder / f"style{suffix}")
    return sorted(folder.iterdir())


def test_every_damaged_hypernetwork_is_loaded_or_refused_in_one_line(tmp_path):
    rng = random.Random(SEED + 1)
    made = _damaged(_hypernetwork_files(tmp_path / "valid"), tmp_path / "hypernetworks", HYPERNETWORK_COPIES, rng)
    before = peak_bytes()
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
    assert peak_bytes() - before < MEMORY_GUARD
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
