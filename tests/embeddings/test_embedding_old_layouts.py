"""Embeddings of the original Textual Inversion code (a torch.nn.ParameterDict inside), and what stays refused."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torch import nn

from oneword.embeddings.formats import EmbeddingFileError, load_embedding_file
from oneword.embeddings.library import scan_embeddings
from oneword.errors import OnewordError
from oneword.hypernetworks.formats import load_hypernetwork


def _original_ti_file(path, vectors: torch.Tensor) -> None:
    """As the original TI code (and early A1111) saved it: its EmbeddingManager's two dicts, the vectors a Parameter
    in a ParameterDict, the token a tensor."""
    params = nn.ParameterDict({"*": nn.Parameter(vectors.clone())})
    torch.save({"string_to_token": {"*": torch.tensor(265)}, "string_to_param": params}, path)


def _problem(path) -> str:
    with pytest.raises(EmbeddingFileError) as err:
        load_embedding_file(path)
    assert str(err.value) == f"{path}: {err.value.problem}"
    return err.value.problem


def test_the_original_ti_layout_loads(tmp_path):
    vectors = torch.randn(4, 768, generator=torch.Generator().manual_seed(1))
    _original_ti_file(tmp_path / "old-style.pt", vectors)
    emb = load_embedding_file(tmp_path / "old-style.pt")
    assert (emb.name, emb.step, emb.n_vectors) == ("old-style", None, 4)
    assert torch.equal(emb.vectors["*"], vectors) and not emb.vectors["*"].requires_grad


def test_a_folder_scan_lists_it_as_loaded(tmp_path, tiny_sd1):
    _original_ti_file(tmp_path / "old-style.pt", torch.randn(2, 64))
    library = scan_embeddings(tmp_path, tiny_sd1)
    assert list(library.loaded) == ["old-style"] and library.skipped == []


def test_refusals_name_the_global_a_file_asks_for(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"string_to_param": {"*": Payload()}}, tmp_path / "system.pt")
    assert _problem(tmp_path / "system.pt") == (
        f"refused: loading it would run code from the file (it asks for {os.name}.system); "
        "only plain tensors are accepted")
    torch.save({"string_to_param": {"*": nn.Linear(2, 2)}}, tmp_path / "module.pt")
    assert "(it asks for torch.nn.modules.linear.Linear)" in _problem(tmp_path / "module.pt")
    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"x": Payload()}, protocol=2))
    assert f"(it asks for {os.name}.system)" in _problem(tmp_path / "raw.pt")


def test_a_parameter_dict_is_admitted_only_where_embeddings_are_read(tmp_path):
    _original_ti_file(tmp_path / "hn.pt", torch.randn(2, 64))
    with pytest.raises(OnewordError) as err:
        load_hypernetwork(tmp_path / "hn.pt")
    assert str(err.value) == (f"{tmp_path / 'hn.pt'}: refused: loading it would run code from the file "
                              "(it asks for torch.nn.modules.container.ParameterDict); only plain tensors are accepted")
