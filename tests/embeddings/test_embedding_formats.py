"""Embedding files: oneword's own round trips, every producer's layout, and clear errors for bad files."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import safetensors.torch
import torch

from oneword.embeddings.embedding import Embedding, EmbeddingMismatch
from oneword.embeddings.formats import EmbeddingFileError, load_embedding_file, save_embedding
from oneword.errors import OnewordError
from oneword.safeload import load_pickle


def _vectors(n: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def _single(name: str = "cat-toy", n: int = 3, width: int = 768, **fields) -> Embedding:
    return Embedding(name=name, vectors={"*": _vectors(n, width, 1)}, **fields)


def _sdxl(name: str = "xl-toy", n: int = 2) -> Embedding:
    return Embedding(name=name, vectors={"clip_l": _vectors(n, 768, 2), "clip_g": _vectors(n, 1280, 3)}, step=40)


# --- oneword's own files -------------------------------------------------------------------------------------


def test_pt_round_trip_writes_a1111_dict(tmp_path):
    emb = _single(step=500, sd_checkpoint="a1b2c3d4e5", sd_checkpoint_name="v1-5-pruned")
    path = tmp_path / "cat-toy.pt"
    save_embedding(emb, path)

    raw = load_pickle(path)
    assert list(raw) == ["string_to_token", "string_to_param", "name", "step", "sd_checkpoint", "sd_checkpoint_name"]
    assert raw["string_to_token"] == {"*": 265}
    assert list(raw["string_to_param"]) == ["*"]
    assert raw["string_to_param"]["*"].dtype == torch.float32
    assert torch.equal(raw["string_to_param"]["*"], emb.vectors["*"])
    assert (raw["name"], raw["step"], raw["sd_checkpoint"], raw["sd_checkpoint_name"]) == (
        "cat-toy", 500, "a1b2c3d4e5", "v1-5-pruned")

    back = load_embedding_file(path)
    assert (back.name, back.step, back.sd_checkpoint, back.sd_checkpoint_name) == (
        "cat-toy", 500, "a1b2c3d4e5", "v1-5-pruned")
    assert back.source == path
    assert list(back.vectors) == ["*"] and torch.equal(back.vectors["*"], emb.vectors["*"])
    assert back.n_vectors == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat-toy.pt"]  # no temporary file left


def test_safetensors_round_trip_keys_the_vectors_by_name(tmp_path):
    emb = _single(step=7, sd_checkpoint="0123456789", sd_checkpoint_name="base")
    path = tmp_path / "cat-toy.safetensors"
    save_embedding(emb, path)

    tensors = safetensors.torch.load_file(path)
    assert list(tensors) == ["cat-toy"] and torch.equal(tensors["cat-toy"], emb.vectors["*"])
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert {k: meta[k] for k in ("name", "step", "sd_checkpoint", "sd_checkpoint_name")} == {
        "name": "cat-toy", "step": "7", "sd_checkpoint": "0123456789", "sd_checkpoint_name": "base"}

    back = load_embedding_file(path)
    assert (back.name, back.step, back.sd_checkpoint, back.sd_checkpoint_name) == ("cat-toy", 7, "0123456789", "base")
    assert torch.equal(back.vectors["*"], emb.vectors["*"])


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_sdxl_round_trip_holds_only_clip_l_and_clip_g(tmp_path, suffix):
    emb = _sdxl()
    path = tmp_path / f"xl-toy{suffix}"
    save_embedding(emb, path)
    raw = load_pickle(path) if suffix == ".pt" else safetensors.torch.load_file(path)
    assert sorted(raw) == ["clip_g", "clip_l"]  # A1111 calls .detach() on every value of an SDXL dict
    back = load_embedding_file(path)
    assert back.name == "xl-toy" and back.is_sdxl and back.n_vectors == 2
    assert back.widths == {"clip_l": 768, "clip_g": 1280}
    for key in ("clip_l", "clip_g"):
        assert torch.equal(back.vectors[key], emb.vectors[key])


def test_save_replaces_atomically_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    save_embedding(_single("w", n=1), path)
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_embedding(_single("w", n=2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]


def test_save_with_model_checks_widths_and_fills_checkpoint(tmp_path, tiny_sd1):
    emb = _single("mine", width=64)
    save_embedding(emb, tmp_path / "mine.pt", model=tiny_sd1)
    assert (emb.sd_checkpoint, emb.sd_checkpoint_name) == (None, None)  # the file records it, emb is unchanged
    back = load_embedding_file(tmp_path / "mine.pt")
    assert (back.sd_checkpoint, back.sd_checkpoint_name) == (tiny_sd1.short_hash, "tiny-sd1")

    with pytest.raises(OnewordError) as err:
        save_embedding(_single("wide", width=768), tmp_path / "wide.pt", model=tiny_sd1)
    assert str(err.value) == (f"{tmp_path / 'wide.pt'}: embedding 'wide' does not fit tiny-sd1: "
                              "width 768 does not match the model's text encoder (64)")
    with pytest.raises(OnewordError, match=r"embeddings are written as \.pt or \.safetensors, not \.ckpt"):
        save_embedding(emb, tmp_path / "mine.ckpt")


def test_files_load_in_diffusers_with_the_name_as_token(tmp_path, tiny_models):
    """diffusers' load_textual_inversion reads both files; the token is the embedding's name."""
    from oneword.models.pipeline import make_pipeline

    model = tiny_models("sd1")
    pipe = make_pipeline(model)
    emb = _single("zqxtoy", n=2, width=64)
    for suffix in (".pt", ".safetensors"):
        path = tmp_path / f"zqxtoy{suffix}"
        save_embedding(emb, path)
        tokenizer = copy.deepcopy(model.encoders[0].tokenizer)  # never touch the shared one
        encoder = copy.deepcopy(model.encoders[0].model)
        pipe.load_textual_inversion(str(path), tokenizer=tokenizer, text_encoder=encoder)
        ids = tokenizer.convert_tokens_to_ids(["zqxtoy", "zqxtoy_1"])
        assert torch.equal(encoder.get_input_embeddings().weight[ids], emb.vectors["*"]), suffix


# --- files from other tools ------------------------------------------------------------------------------------


def test_reads_a1111_pt_with_the_file_stem_as_name(tmp_path):
    vec = _vectors(4, 768, 5).requires_grad_()  # A1111 saves the tensor it trained
    data = {"string_to_token": {"*": 265}, "string_to_param": {"*": vec}, "name": "old-name", "step": 1234,
            "sd_checkpoint": "a1b2c3d4e5", "sd_checkpoint_name": "v1-5-pruned"}
    torch.save(data, tmp_path / "mychar.pt")
    emb = load_embedding_file(tmp_path / "mychar.pt")
    assert emb.name == "mychar"  # A1111: the file stem, not the stored name
    assert (emb.step, emb.sd_checkpoint, emb.sd_checkpoint_name, emb.n_vectors) == (
        1234, "a1b2c3d4e5", "v1-5-pruned", 4)
    assert not emb.vectors["*"].requires_grad
    assert torch.equal(emb.vectors["*"], vec.detach())


@pytest.mark.parametrize("key", ["emb_params", "string_to_param.*", "anything"])
def test_reads_flat_single_tensor_safetensors_as_a1111_does(tmp_path, key):
    vec = _vectors(2, 1024, 6).half()
    safetensors.torch.save_file({key: vec}, tmp_path / "flat.safetensors")
    emb = load_embedding_file(tmp_path / "flat.safetensors")
    assert (emb.name, emb.step, list(emb.vectors)) == ("flat", None, ["*"])
    assert emb.vectors["*"].dtype == torch.float32
    assert torch.equal(emb.vectors["*"], vec.float())


def test_reads_sdxl_safetensors_and_ignores_onetrainer_output_vectors(tmp_path):
    tensors = {"clip_l": _vectors(3, 768, 7), "clip_g": _vectors(3, 1280, 8),
               "clip_l_out": _vectors(3, 768, 9), "clip_g_out": _vectors(3, 1280, 10)}
    safetensors.torch.save_file(tensors, tmp_path / "xl.safetensors")
    emb = load_embedding_file(tmp_path / "xl.safetensors")
    assert sorted(emb.vectors) == ["clip_g", "clip_l"] and emb.n_vectors == 3
    assert torch.equal(emb.vectors["clip_l"], tensors["clip_l"])
    assert torch.equal(emb.vectors["clip_g"], tensors["clip_g"])


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_reads_diffusers_learned_embeds_one_d_and_two_d(tmp_path, suffix):
    one = _vectors(1, 768, 11)[0]
    two = _vectors(3, 768, 12)
    for stem, tensor in (("one", one), ("two", two)):
        path = tmp_path / f"{stem}{suffix}"
        if suffix == ".bin":
            torch.save({"<cat-toy>": tensor}, path)
        else:
            safetensors.torch.save_file({"<cat-toy>": tensor}, path)
        emb = load_embedding_file(path)
        assert emb.name == stem
        assert emb.vectors["*"].shape == (1 if stem == "one" else 3, 768)
        assert torch.equal(emb.vectors["*"], tensor.reshape(-1, 768))


def test_reads_kohya_pt_and_onetrainer_safetensors(tmp_path):
    kohya = _vectors(2, 768, 13)
    torch.save({"emb_params": kohya}, tmp_path / "kohya.pt")
    emp, emp_out = _vectors(5, 1024, 14), _vectors(5, 1024, 15)
    safetensors.torch.save_file({"emp_params": emp, "emp_params_out": emp_out}, tmp_path / "ot.safetensors")
    torch.save(_vectors(1, 768, 16)[0], tmp_path / "bare.pt")

    assert torch.equal(load_embedding_file(tmp_path / "kohya.pt").vectors["*"], kohya)
    assert torch.equal(load_embedding_file(tmp_path / "ot.safetensors").vectors["*"], emp)
    assert load_embedding_file(tmp_path / "bare.pt").vectors["*"].shape == (1, 768)


# --- bad files -------------------------------------------------------------------------------------------------


def _problem(path: Path) -> str:
    with pytest.raises(EmbeddingFileError) as err:
        load_embedding_file(path)
    assert str(err.value) == f"{path}: {err.value.problem}"  # one line naming the file
    return err.value.problem


def test_truncated_and_garbage_files_are_clear_errors(tmp_path):
    good = tmp_path / "good.safetensors"
    save_embedding(_single(), good)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert _problem(cut).startswith("not a readable safetensors file (")

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a safetensors file at all")
    assert _problem(junk).startswith("not a readable safetensors file (")

    text = tmp_path / "notes.pt"
    text.write_text("hello\n")
    assert _problem(text) == "not a PyTorch file (neither a zip archive nor a pickle)"

    pt = tmp_path / "cut.pt"
    save_embedding(_single(), tmp_path / "whole.pt")
    pt.write_bytes((tmp_path / "whole.pt").read_bytes()[:300])
    assert _problem(pt).startswith("not a readable PyTorch file (")

    assert _problem(tmp_path / "missing.pt") == "no such file"
    (tmp_path / "x.txt").write_text("x")
    assert _problem(tmp_path / "x.txt") == (
        "not an embedding file (expected .pt, .bin, .safetensors, .png, .webp, .avif, .jxl)")


def test_files_that_are_not_embeddings(tmp_path):
    safetensors.torch.save_file({"a.weight": torch.ones(2, 2), "b.weight": torch.ones(2), "c": torch.ones(1)},
                                tmp_path / "model.safetensors")
    assert _problem(tmp_path / "model.safetensors") == (
        "not an embedding: 3 tensors (a.weight, b.weight, c); expected string_to_param, clip_l + clip_g, "
        "emb_params, emp_params or a single tensor")

    safetensors.torch.save_file({"clip_l": torch.ones(1, 768), "t5xxl": torch.ones(1, 4096)},
                                tmp_path / "flux.safetensors")
    assert _problem(tmp_path / "flux.safetensors") == (
        "an SDXL embedding needs both clip_l and clip_g; it holds only clip_l, t5xxl")

    safetensors.torch.save_file({"clip_l": torch.ones(2, 768), "clip_g": torch.ones(3, 1280)},
                                tmp_path / "uneven.safetensors")
    assert _problem(tmp_path / "uneven.safetensors") == "clip_l has 2 vectors but clip_g has 3"

    torch.save({"string_to_param": {"*": torch.ones(1, 768), "#": torch.ones(1, 768)}}, tmp_path / "two.pt")
    assert _problem(tmp_path / "two.pt") == "string_to_param must hold exactly one tensor, it holds 2"

    torch.save({"ids": torch.arange(4)}, tmp_path / "ints.pt")
    assert _problem(tmp_path / "ints.pt") == "'ids' holds torch.int64 numbers, not floats"

    torch.save({"emb_params": torch.ones(1, 2, 768)}, tmp_path / "cube.pt")
    assert _problem(tmp_path / "cube.pt") == "emb_params has shape [1, 2, 768], expected [n_vectors, width]"

    torch.save(["not", "a", "dict"], tmp_path / "list.pt")
    assert _problem(tmp_path / "list.pt") == "not an embedding: it holds a list, not a dict of tensors"

    torch.save({"name": "no tensors"}, tmp_path / "empty.pt")
    assert _problem(tmp_path / "empty.pt") == "not an embedding: it holds no tensors"


class _Marker:
    """Unpickling this creates a file: what a malicious pickle would do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"string_to_param": {"*": _Marker(marker)}, "name": "evil"}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))

    problem = _problem(path)
    assert problem.startswith("refused: loading it would run code from the file")
    assert not marker.exists()

    with open(path, "rb") as f:  # the file really is malicious: an unsafe load creates the marker
        torch.load(f, weights_only=False) if how == "torch.save" else pickle.load(f)
    assert marker.exists()


# --- fitting a model -------------------------------------------------------------------------------------------


def test_vectors_for_checks_widths_and_encoders(tiny_models):
    sd1, sdxl = tiny_models("sd1"), tiny_models("sdxl")
    fits = _single("a", n=2, width=64)
    assert [t.shape for t in fits.vectors_for(sd1)] == [(2, 64)]
    assert fits.vectors_for(sd1)[0] is fits.vectors["*"]

    with pytest.raises(EmbeddingMismatch) as err:
        _single("b", width=768).vectors_for(sd1)
    assert str(err.value) == "width 768 does not match the model's text encoder (64)"

    xl = Embedding("c", {"clip_l": _vectors(2, 64, 1), "clip_g": _vectors(2, 128, 2)})
    assert [t.shape for t in xl.vectors_for(sdxl)] == [(2, 64), (2, 128)]
    with pytest.raises(EmbeddingMismatch) as err:
        xl.vectors_for(sd1)
    assert str(err.value) == "an SDXL embedding (clip_l, clip_g) does not fit a sd1 model, which has one text encoder"
    with pytest.raises(EmbeddingMismatch) as err:
        fits.vectors_for(sdxl)
    assert str(err.value) == "SDXL needs clip_l and clip_g; this embedding has one set of vectors (width 64)"
    with pytest.raises(EmbeddingMismatch) as err:
        _sdxl().vectors_for(sdxl)
    assert str(err.value) == ("clip_l width 768 does not match the model's clip_l encoder (64); "
                              "clip_g width 1280 does not match the model's clip_g encoder (128)")


def test_embedding_refuses_malformed_vectors():
    with pytest.raises(ValueError, match=r"vectors must have the key '\*' or the keys clip_l and clip_g"):
        Embedding("x", {"clip_l": torch.ones(1, 4)})
    with pytest.raises(ValueError, match=r"\* has shape \[4\], expected \[n_vectors, width\]"):
        Embedding("x", {"*": torch.ones(4)})
    with pytest.raises(ValueError, match="clip_l and clip_g must have as many vectors"):
        Embedding("x", {"clip_l": torch.ones(1, 4), "clip_g": torch.ones(2, 8)})
