"""Embedding files whose vectors cannot be used are refused when read, with the reason, not loaded silently."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from oneword.embeddings.formats import EmbeddingFileError, load_embedding_file
from oneword.embeddings.library import scan_embeddings


def _vectors(n: int, width: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def _problem(path) -> str:
    with pytest.raises(EmbeddingFileError) as err:
        load_embedding_file(path)
    assert str(err.value) == f"{path}: {err.value.problem}"
    return err.value.problem


def _a1111(path, vectors: torch.Tensor) -> None:
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vectors}, "name": path.stem}, path)


# --- OneTrainer output embeddings ------------------------------------------------------------------------------


def test_a_onetrainer_output_embedding_is_refused_not_read_as_zeros(tmp_path):
    safetensors.torch.save_file({"emp_params": torch.zeros(3, 64), "emp_params_out": _vectors(3)},
                                tmp_path / "out.safetensors")
    assert _problem(tmp_path / "out.safetensors") == (
        "a OneTrainer output embedding: its vectors (emp_params_out) replace the text encoder's output, which "
        "A1111, diffusers and oneword do not support, and its input vectors (emp_params) are all zero")
    xl = {"clip_l": torch.zeros(2, 64), "clip_g": torch.zeros(2, 128),
          "clip_l_out": _vectors(2), "clip_g_out": _vectors(2, 128)}
    safetensors.torch.save_file(xl, tmp_path / "xl.safetensors")
    assert _problem(tmp_path / "xl.safetensors").startswith("a OneTrainer output embedding: its vectors (clip_l_out)")


def test_a_scan_skips_it_with_the_reason(tmp_path, tiny_sd1):
    safetensors.torch.save_file({"emp_params": torch.zeros(3, 64), "emp_params_out": _vectors(3)},
                                tmp_path / "out.safetensors")
    safetensors.torch.save_file({"emp_params": _vectors(3), "emp_params_out": _vectors(3, seed=1)},
                                tmp_path / "in.safetensors")  # input vectors present: read as before
    library = scan_embeddings(tmp_path, tiny_sd1)
    assert list(library.loaded) == ["in"]
    assert [(p.name, reason.split(":")[0]) for p, reason in library.skipped] == [
        ("out.safetensors", "a OneTrainer output embedding")]


# --- values and counts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, problem", [
    (float("nan"), "string_to_param holds NaN or infinite values"),
    (float("inf"), "string_to_param holds NaN or infinite values"),
    (-3e38, "string_to_param holds values as large as 3e+38 (usable vectors stay far below 10000)"),
    (2e4, "string_to_param holds values as large as 2e+04 (usable vectors stay far below 10000)"),
])
def test_nan_inf_and_huge_vectors_are_refused(tmp_path, value, problem):
    vectors = _vectors(2)
    vectors[1, 5] = value
    _a1111(tmp_path / "bad.pt", vectors)
    assert _problem(tmp_path / "bad.pt") == problem


def test_huge_half_precision_vectors_and_other_layouts_are_refused_too(tmp_path):
    safetensors.torch.save_file({"clip_l": _vectors(1), "clip_g": torch.full((1, 128), float("-inf"))},
                                tmp_path / "xl.safetensors")
    assert _problem(tmp_path / "xl.safetensors") == "clip_g holds NaN or infinite values"
    half = _vectors(1).half()
    half[0, 3] = 30000  # finite in float16, whose largest is 65504
    torch.save({"emb_params": half}, tmp_path / "kohya.pt")
    assert _problem(tmp_path / "kohya.pt") == (
        "emb_params holds values as large as 3e+04 (usable vectors stay far below 10000)")


@pytest.mark.parametrize("n", [76, 80, 5000])
def test_more_vectors_than_a_prompt_chunk_holds_are_refused(tmp_path, n):
    _a1111(tmp_path / "long.pt", _vectors(n))
    assert _problem(tmp_path / "long.pt") == (
        f"string_to_param has {n} vectors; a prompt chunk holds 75 tokens, so an embedding can have at most 75")


def test_ordinary_vectors_still_load(tmp_path):
    strong = _vectors(75) * 40  # 75 vectors, values far beyond any token embedding's, still usable
    _a1111(tmp_path / "strong.pt", strong)
    assert torch.equal(load_embedding_file(tmp_path / "strong.pt").vectors["*"], strong)


def test_a_scan_lists_unusable_files_as_skipped(tmp_path, tiny_sd1):
    nan = _vectors(2)
    nan[0, 0] = float("nan")
    _a1111(tmp_path / "nan.pt", nan)
    _a1111(tmp_path / "long.pt", _vectors(80))
    _a1111(tmp_path / "fine.pt", _vectors(2))
    library = scan_embeddings(tmp_path, tiny_sd1)
    assert list(library.loaded) == ["fine"]
    assert [(p.name, reason) for p, reason in library.skipped] == [
        ("long.pt", "string_to_param has 80 vectors; a prompt chunk holds 75 tokens, so an embedding can have at "
                    "most 75"),
        ("nan.pt", "string_to_param holds NaN or infinite values"),
    ]


def test_tensors_without_their_numbers_are_refused_before_being_copied(tmp_path):
    _a1111(tmp_path / "expanded.pt", torch.zeros(1).expand(75, 10**8))  # 30 GB if copied; the file holds 4 bytes
    assert (tmp_path / "expanded.pt").stat().st_size < 4096
    assert _problem(tmp_path / "expanded.pt") == (
        "string_to_param claims 30000000000 bytes of numbers but the file stores only 4 (an expanded view)")
    _a1111(tmp_path / "sparse.pt", _vectors(2).to_sparse())
    assert _problem(tmp_path / "sparse.pt") == "string_to_param is a sparse_coo tensor, not a dense one"
    _a1111(tmp_path / "meta.pt", torch.empty(2, 64, device="meta"))
    assert _problem(tmp_path / "meta.pt") == "string_to_param is on the meta device: the file holds no numbers for it"
