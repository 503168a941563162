"""Hypernetwork files that would cost gigabytes or draw black images are refused before any module is built."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from hypernetwork_helpers import a1111_file

from oneword.errors import OnewordError
from oneword.hypernetworks import formats
from oneword.hypernetworks.create import CreateHypernetworkConfig, check_create
from oneword.hypernetworks.formats import load_hypernetwork


@pytest.fixture
def no_module_built(monkeypatch):
    """Fail the test if a module is built (what allocates the weights the settings ask for)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a module was built before the file was checked")

    monkeypatch.setattr(formats, "HypernetworkModule", refuse)


@pytest.fixture(autouse=True)
def values_read(monkeypatch) -> list[int]:
    """Count the bytes of weights whose values a load reads, and fail before reading more than the file being loaded
    holds: an expanded view of a few stored numbers claims gigabytes, and reading it is what the checks avoid."""
    read, limit = [0], [0]
    real_from_dict, real_values_problem = formats.from_dict, formats._values_problem

    def from_dict(data, path):
        read[0], limit[0] = 0, path.stat().st_size
        return real_from_dict(data, path)

    def values_problem(state):
        read[0] += sum(t.numel() * t.element_size() for t in state.values())
        if read[0] > limit[0]:
            raise AssertionError(f"{read[0]} bytes of weights read from a file of {limit[0]} bytes")
        return real_values_problem(state)

    monkeypatch.setattr(formats, "from_dict", from_dict)
    monkeypatch.setattr(formats, "_values_problem", values_problem)
    return read


def _refusal(path) -> str:
    with pytest.raises(OnewordError) as err:
        load_hypernetwork(path)
    assert str(err.value).startswith(f"{path}: ")
    return str(err.value)[len(f"{path}: "):]


def _state(width: int, hidden: int, make=torch.zeros) -> OrderedDict:
    return OrderedDict([("linear.0.weight", make(hidden, width)), ("linear.0.bias", make(hidden)),
                        ("linear.1.weight", make(width, hidden)), ("linear.1.bias", make(width))])


def _file(path, width: int, state: OrderedDict, **settings) -> None:
    torch.save({width: (state, state), "layer_structure": [1, 2, 1], "activation_func": "linear", **settings}, path)


def test_settings_that_size_huge_modules_are_refused_from_the_settings(tmp_path, no_module_built):
    _file(tmp_path / "wide.pt", 8, _state(8, 16), layer_structure=[1, 2e6, 1])
    assert (tmp_path / "wide.pt").stat().st_size < 4096
    assert _refusal(tmp_path / "wide.pt") == (
        "layer structure 1, 2e+06, 1: every number must be at most 100 (a layer that many times the context width)")


def test_a_width_whose_weights_the_file_does_not_hold_is_refused_from_the_shapes(tmp_path, no_module_built):
    _file(tmp_path / "w8000.pt", 8000, _state(8, 16))  # 1, 2, 1 at width 8000: 0.5 GB per module
    assert (tmp_path / "w8000.pt").stat().st_size < 4096
    assert _refusal(tmp_path / "w8000.pt") == (
        "module 8000 K does not match layer structure 1, 2, 1 "
        "(linear.0.weight has shape [16, 8], expected [16000, 8000])")


def test_expanded_tensors_that_claim_more_than_the_file_stores_are_refused(tmp_path, no_module_built):
    _file(tmp_path / "expanded.pt", 8000, _state(8000, 16000, make=lambda *size: torch.zeros(1).expand(*size)))
    assert (tmp_path / "expanded.pt").stat().st_size < 4096
    assert _refusal(tmp_path / "expanded.pt") == (
        "not a hypernetwork: its weights claim 2048192000 bytes but the file stores only 16 "
        "(expanded or shared tensors)")


def test_odd_module_keys_are_refused(tmp_path, no_module_built):
    data = a1111_file(tmp_path / "x.pt", 8, seed=1)
    data[0] = data.pop(8)
    torch.save(data, tmp_path / "zero.pt")
    assert _refusal(tmp_path / "zero.pt") == "module 0: a context width is a whole number above 0"
    a1111_file(tmp_path / "many.pt", list(range(1, 18)), seed=1)
    assert _refusal(tmp_path / "many.pt") == (
        "not a hypernetwork: modules for 17 context widths (a model's attention sees a handful; at most 16 are read)")
    data = a1111_file(tmp_path / "x.pt", 8, seed=1)
    data[8][1]["linear.1.extra"] = torch.zeros(1)
    torch.save(data, tmp_path / "extra.pt")
    assert _refusal(tmp_path / "extra.pt") == (
        "module 8 V does not match layer structure 1, 2, 1 (unexpected linear.1.extra)")


@pytest.mark.parametrize("make, shown", [
    (lambda t: t.to_sparse(), "sparse_coo, on cpu"),
    (lambda t: torch.empty_like(t, device="meta"), "strided, on meta"),
])
def test_sparse_and_meta_tensors_are_refused(tmp_path, no_module_built, make, shown):
    data = a1111_file(tmp_path / "odd.pt", 8, seed=2)
    data[8][0]["linear.0.bias"] = make(data[8][0]["linear.0.bias"])
    torch.save(data, tmp_path / "odd.pt")
    assert _refusal(tmp_path / "odd.pt") == (
        f"module 8 K: linear.0.bias is not a dense tensor of stored numbers ({shown})")


@pytest.mark.parametrize("value, problem", [
    (float("nan"), "linear.1.weight holds NaN or infinite values"),
    (float("-inf"), "linear.1.weight holds NaN or infinite values"),
    (5e5, "linear.1.weight holds values as large as 5e+05 (usable weights stay far below 10000)"),
])
def test_nan_inf_and_huge_weights_are_refused(tmp_path, value, problem):
    data = a1111_file(tmp_path / "bad.pt", 8, seed=2)
    data[8][0]["linear.1.weight"][3, 2] = value
    torch.save(data, tmp_path / "bad.pt")
    assert _refusal(tmp_path / "bad.pt") == f"module 8 K: {problem}"


def test_real_files_still_load(tmp_path, values_read):
    data = a1111_file(tmp_path / "fine.pt", [8, 16], seed=3, scale=20.0)
    loaded = load_hypernetwork(tmp_path / "fine.pt")
    assert values_read[0] == 4 * sum(t.numel() for w in (8, 16) for s in data[w] for t in s.values())
    assert torch.equal(loaded.layers[16][1].linear[1].weight, data[16][1]["linear.1.weight"])


def test_a_structure_of_a_hundred_thousand_numbers_gets_a_short_line(tmp_path, no_module_built, values_read):
    _file(tmp_path / "long.pt", 8, _state(8, 16), layer_structure=[1.0] + [2.0] * 10**5 + [-1.0])
    assert _refusal(tmp_path / "long.pt") == (
        "layer structure 1, 2, 2, 2, ... (100002 numbers): must start and end with 1 (the context width)")
    assert values_read == [0]  # refused from its settings, before any weight is read


def test_create_refuses_a_structure_that_wide(tmp_path):
    with pytest.raises(OnewordError) as err:
        check_create(CreateHypernetworkConfig("hx", layer_structure="1, 200, 1", hypernetwork_dir=tmp_path))
    assert str(err.value) == (
        "--layer-structure 1, 200, 1: every number must be at most 100 (a layer that many times the context width)")
