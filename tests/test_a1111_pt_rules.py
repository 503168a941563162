"""Every pickle file oneword writes passes A1111's safe-loader rules (modules/safe.py of v1.10), and still loads.

The rules are carried over here from A1111's code: the zip entries a file may hold, and an unpickler that
resolves only the globals A1111 allows and gives every storage as an empty TypedStorage, as A1111's does.
"""

from __future__ import annotations

import builtins
import collections
import io
import pickle
import re
import struct
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import a1111_dict, load_embedding_file, save_embedding
from oneword.hypernetworks.create import CreateHypernetworkConfig, create_hypernetwork_file
from oneword.hypernetworks.formats import load_hypernetwork
from oneword.models.export import save_single_file
from oneword.models.tiny import build_tiny
from oneword.safeload import load_pickle
from oneword.train.checkpoint import load_optimizer_state
from oneword.train.config import TrainConfig
from oneword.train.loop import train

A1111_ENTRIES = re.compile(r"^([^/]+)/((data/\d+)|version|byteorder|.data/serialization_id|(data\.pkl))$")
A1111_DATA_PKL = re.compile(r"^([^/]+)/data\.pkl$")
A1111_ALLOWED = {
    "collections": {"OrderedDict"},
    "torch._utils": {"_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_device_tensor_from_numpy"},
    "torch": {"FloatStorage", "HalfStorage", "IntStorage", "LongStorage", "DoubleStorage", "ByteStorage",
              "float32", "BFloat16Storage"},
    "torch.nn.modules.container": {"ParameterDict"},
    "numpy.core.multiarray": {"scalar", "_reconstruct"},
    "numpy": {"dtype", "ndarray"},
    "_codecs": {"encode"},
    "__builtin__": {"set"},
}


class A1111Refused(Exception):
    """What A1111's check_pt raises: the file is not loaded there."""


class A1111Unpickler(pickle.Unpickler):
    """A1111's RestrictedUnpickler: allowed globals resolve, every other one is refused; storages are empty."""

    def persistent_load(self, saved_id):
        if saved_id[0] != "storage":
            raise A1111Refused(f"persistent id {saved_id[0]!r}")
        return torch.storage.TypedStorage(_internal=True)

    def find_class(self, module, name):
        if name not in A1111_ALLOWED.get(module, ()):
            raise A1111Refused(f"global '{module}/{name}' is forbidden")
        if module == "__builtin__":
            return getattr(builtins, name)
        if module.startswith("numpy"):
            raise A1111Refused(f"{module}.{name}: oneword never writes numpy objects")
        return getattr(collections if module == "collections" else _module(module), name)


def _module(name: str):
    import importlib

    return importlib.import_module(name)


def a1111_check(path) -> None:
    """A1111's check_pt on a zip-format file: raises A1111Refused (or pickle's errors) where A1111 refuses it."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        bad = [name for name in names if not A1111_ENTRIES.match(name)]
        if bad:
            raise A1111Refused(f"bad file inside {path}: {bad[0]}")
        pickles = [name for name in names if A1111_DATA_PKL.match(name)]
        if len(pickles) != 1:
            raise A1111Refused(f"{len(pickles)} data.pkl in {path}")
        with archive.open(pickles[0]) as f:
            A1111Unpickler(f).load()


def assert_a1111_loads(path) -> None:
    """A1111 accepts the file, and torch.load reads it (weights_only, and memory-mapped) with equal tensors."""
    a1111_check(path)
    plain = torch.load(path, weights_only=True)
    mapped = torch.load(path, weights_only=True, mmap=True)
    assert _tensors(plain) and len(_tensors(plain)) == len(_tensors(mapped))
    assert all(torch.equal(a, b) for a, b in zip(_tensors(plain), _tensors(mapped)))


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in value for t in _tensors(value[key])]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def _writes_entries_a1111_refuses() -> bool:
    buffer = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buffer)
    return any(not A1111_ENTRIES.match(name) for name in zipfile.ZipFile(buffer).namelist())


@pytest.fixture
def model():
    return build_tiny("sd1", seed=0)


def _run_settings(tmp_path, **changes) -> TrainConfig:
    """A two-step run on four noise pictures, saving at every step."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")).save(data / f"{i:05d}-0-a ball.png")
    return TrainConfig(name="zqx", data=data, model="tiny-sd1", init_text="ball", max_steps=2, save_every=1,
                       preview_every=0, batch_size=2, csv_every=1, log_dir=tmp_path / "log",
                       embeddings_dir=tmp_path / "emb", **changes)


# --- the rules refuse what A1111 refuses ------------------------------------------------------------------------


@pytest.mark.skipif(not _writes_entries_a1111_refuses(), reason="this torch writes only entries A1111 accepts")
def test_the_rules_refuse_a_plain_torch_save_of_this_torch(tmp_path):
    torch.save({"string_to_param": {"*": torch.zeros(1, 8)}}, tmp_path / "plain.pt")
    with pytest.raises(A1111Refused, match=r"bad file inside .*plain.pt: plain/\.format_version"):
        a1111_check(tmp_path / "plain.pt")


def test_the_rules_refuse_globals_a1111_does_not_allow(tmp_path):
    from oneword.ptfile import save_pt

    save_pt({"x": torch.zeros(2)}, tmp_path / "ok.pt")
    a1111_check(tmp_path / "ok.pt")
    torch.save({"x": torch.zeros(2, dtype=torch.bool)}, tmp_path / "bool.pt")
    with zipfile.ZipFile(tmp_path / "bool.pt") as archive:
        data_pkl = archive.read("bool/data.pkl")
    with pytest.raises(A1111Refused, match="global 'torch/BoolStorage' is forbidden"):
        A1111Unpickler(io.BytesIO(data_pkl)).load()
    with pytest.raises(ValueError, match="torch.BoolStorage, which A1111's safe loader refuses"):
        save_pt({"x": torch.zeros(2, dtype=torch.bool)}, io.BytesIO())


# --- every .pt oneword writes ----------------------------------------------------------------------------------


def test_embeddings_sd1_and_sdxl(tmp_path, tiny_models):
    single = Embedding("cat-toy", {"*": torch.randn(3, 64)}, step=5)
    save_embedding(single, tmp_path / "cat-toy.pt", model=tiny_models("sd1"))
    xl = Embedding("xl-toy", {"clip_l": torch.randn(2, 64), "clip_g": torch.randn(2, 128)}, step=7)
    save_embedding(xl, tmp_path / "xl-toy.pt", model=tiny_models("sdxl"))
    for path, embedding in ((tmp_path / "cat-toy.pt", single), (tmp_path / "xl-toy.pt", xl)):
        assert_a1111_loads(path)
        back = load_embedding_file(path)
        assert all(torch.equal(back.vectors[key], embedding.vectors[key]) for key in embedding.vectors)


def test_a_created_hypernetwork(tmp_path, tiny_sd1):
    config = CreateHypernetworkConfig("hx", layer_norm=True, activation="relu", hypernetwork_dir=tmp_path)
    path, made = create_hypernetwork_file(tiny_sd1, config)
    assert_a1111_loads(path)
    assert all(torch.equal(a, b) for a, b in zip(load_hypernetwork(path).parameters(), made.parameters()))


@pytest.mark.parametrize("kind", ["embedding", "hypernetwork"])
def test_a_runs_checkpoints_and_optimizer_state(tmp_path, model, kind):
    extra = dict(kind="hypernetwork", learn_rate="0.001", template="hypernetwork",
                 hypernetwork_dir=tmp_path / "hn") if kind == "hypernetwork" else {}
    finished = train(_run_settings(tmp_path, **extra), model)
    assert finished.step == 2
    written = sorted(p for p in tmp_path.rglob("*") if p.suffix in (".pt", ".optim"))
    assert {"zqx.pt", "zqx.pt.optim", "zqx-1.pt", "zqx-2.pt"} <= {p.name for p in written}
    for path in written:  # every pickle file the run wrote
        assert_a1111_loads(path)
    folder = tmp_path / ("hn" if kind == "hypernetwork" else "emb")
    assert load_pickle(folder / "zqx.pt.optim")["step"] == 2


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_an_exported_ckpt(tmp_path, tiny_sd1, dtype):
    save_single_file(tiny_sd1, tmp_path / "model.ckpt", dtype=dtype)
    assert_a1111_loads(tmp_path / "model.ckpt")


# --- files older versions wrote (plain torch.save) still load ------------------------------------------------


def test_files_written_by_plain_torch_save_still_load(tmp_path, tiny_sd1):
    embedding = Embedding("old", {"*": torch.randn(2, 64)}, step=3)
    torch.save(a1111_dict(embedding), tmp_path / "old.pt")
    assert torch.equal(load_embedding_file(tmp_path / "old.pt").vectors["*"], embedding.vectors["*"])

    path, made = create_hypernetwork_file(tiny_sd1, CreateHypernetworkConfig("hx", hypernetwork_dir=tmp_path))
    torch.save(torch.load(path, weights_only=True), path)
    assert all(torch.equal(a, b) for a, b in zip(load_hypernetwork(path).parameters(), made.parameters()))

    state = {"hash": "abc", "optimizer_name": "AdamW", "optimizer_state_dict": {"state": {}, "param_groups": []},
             "step": 4}
    torch.save(state, tmp_path / "old.pt.optim")
    assert load_optimizer_state("abc", tmp_path / "old.pt", "AdamW") == (state["optimizer_state_dict"], None)


def test_records_stay_aligned_for_memory_mapping_with_zip64_sizes_too(tmp_path, monkeypatch):
    from oneword.ptfile import save_pt

    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)  # data/0 (4000 bytes) gets a zip64 local header
    tensors = {"big": torch.randn(1000), "small": torch.randn(3)}
    save_pt(tensors, tmp_path / "z.pt")
    raw = (tmp_path / "z.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "z.pt") as archive:
        for info in archive.infolist():
            name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            assert (info.header_offset + 30 + name_length + extra_length) % 64 == 0, info.filename
    assert_a1111_loads(tmp_path / "z.pt")
    assert torch.equal(torch.load(tmp_path / "z.pt", weights_only=True, mmap=True)["big"], tensors["big"])
