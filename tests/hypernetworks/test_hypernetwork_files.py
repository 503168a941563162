"""Hypernetwork files: A1111's exact layout written, A1111-layout files (old keys too) read, safetensors, bad files."""

from __future__ import annotations

import pickle

import pytest
import torch
from hypernetwork_helpers import a1111_file

from oneword.errors import OnewordError
from oneword.hypernetworks.create import CreateHypernetworkConfig, create_hypernetwork, create_hypernetwork_file
from oneword.hypernetworks.formats import load_hypernetwork, save_hypernetwork
from oneword.hypernetworks.hypernetwork import HypernetworkSettings

A1111_SETTINGS_KEYS = {
    "step", "name", "layer_structure", "activation_func", "is_layer_norm", "weight_initialization", "sd_checkpoint",
    "sd_checkpoint_name", "activate_output", "use_dropout", "dropout_structure", "last_layer_dropout", "optional_info",
}


def test_a_created_file_has_a1111s_keys_and_shapes(tmp_path, tiny_sd1):
    config = CreateHypernetworkConfig("hx", hypernetwork_dir=tmp_path)
    path, _ = create_hypernetwork_file(tiny_sd1, config)
    assert path == tmp_path / "hx.pt"
    data = torch.load(path, weights_only=True)
    widths = [k for k in data if isinstance(k, int)]
    assert sorted(widths) == [32, 64]  # tiny SD 1.x: text width 64, self-attention widths 32 and 64
    assert set(data) - set(widths) == A1111_SETTINGS_KEYS
    for width in widths:
        pair = data[width]
        assert isinstance(pair, tuple) and len(pair) == 2
        for state in pair:  # structure 1, 2, 1, linear: two Linear layers at Sequential indices 0 and 1
            assert {k: tuple(v.shape) for k, v in state.items()} == {
                "linear.0.weight": (2 * width, width), "linear.0.bias": (2 * width,),
                "linear.1.weight": (width, 2 * width), "linear.1.bias": (width,)}
            assert all(v.dtype == torch.float32 for v in state.values())
            assert torch.count_nonzero(state["linear.0.bias"]) == 0  # Normal init: zero biases, small weights
            assert 0.005 < state["linear.0.weight"].std() < 0.015
    assert data["layer_structure"] == [1.0, 2.0, 1.0] and data["activation_func"] == "linear"
    assert data["weight_initialization"] == "Normal" and data["is_layer_norm"] is False
    assert data["use_dropout"] is False and data["dropout_structure"] == [0.0, 0.0, 0.0]
    assert data["last_layer_dropout"] is False and data["activate_output"] is False
    assert (data["step"], data["name"]) == (0, "hx")
    assert data["sd_checkpoint"] == tiny_sd1.short_hash and data["sd_checkpoint_name"] == tiny_sd1.name


def test_activation_layer_norm_and_dropout_take_sequential_indices_as_in_a1111(tmp_path, tiny_sd1):
    config = CreateHypernetworkConfig("hx", modules="64", layer_structure="1, 1.5, 1", activation="relu",
                                      layer_norm=True, use_dropout=True, dropout_structure="0, 0.25, 0",
                                      hypernetwork_dir=tmp_path)
    path, _ = create_hypernetwork_file(tiny_sd1, config)
    data = torch.load(path, weights_only=True)
    assert [k for k in data if isinstance(k, int)] == [64]
    # Linear(64, 96), ReLU, LayerNorm(96), Dropout, Linear(96, 64), LayerNorm(64): no ReLU after the last layer
    assert {k: tuple(v.shape) for k, v in data[64][0].items()} == {
        "linear.0.weight": (96, 64), "linear.0.bias": (96,), "linear.2.weight": (96,), "linear.2.bias": (96,),
        "linear.4.weight": (64, 96), "linear.4.bias": (64,), "linear.5.weight": (64,), "linear.5.bias": (64,)}
    assert data["dropout_structure"] == [0.0, 0.25, 0.0] and data["use_dropout"] is True
    loaded = load_hypernetwork(path)
    assert [type(m).__name__ for m in loaded.layers[64][0].linear] == [
        "Linear", "ReLU", "LayerNorm", "Dropout", "Linear", "LayerNorm"]
    assert loaded.layers[64][0].linear[3].p == 0.25


def test_an_a1111_file_loads_with_its_weights_and_settings(tmp_path):
    data = a1111_file(tmp_path / "their-style.pt", 64, seed=1)
    hn = load_hypernetwork(tmp_path / "their-style.pt")
    assert (hn.name, hn.step, hn.sd_checkpoint, hn.widths) == ("their-style", 1500, "abcdef1234", [64])
    for module, state in zip(hn.layers[64], data[64]):
        assert all(torch.equal(module.state_dict()[k], v) for k, v in state.items())
        assert not module.training  # loaded for sampling: dropout off


def test_old_novelai_keys_load_as_structure_1_2_1(tmp_path):
    data = a1111_file(tmp_path / "old.pt", 64, seed=2, old_keys=True)
    hn = load_hypernetwork(tmp_path / "old.pt")
    assert hn.settings.layer_structure == [1.0, 2.0, 1.0] and hn.settings.activation_func == "linear"
    assert hn.name == "old" and hn.step == 0
    k = hn.layers[64][0].state_dict()
    assert torch.equal(k["linear.0.weight"], data[64][0]["linear1.weight"])
    assert torch.equal(k["linear.1.bias"], data[64][0]["linear2.bias"])


def test_pt_and_safetensors_round_trip(tmp_path, tiny_sd1):
    hn = create_hypernetwork(tiny_sd1, CreateHypernetworkConfig("hx", activation="tanh", layer_norm=True, seed=3))
    hn.step = 42
    for suffix in (".pt", ".safetensors"):
        save_hypernetwork(hn, tmp_path / f"hx{suffix}")
        back = load_hypernetwork(tmp_path / f"hx{suffix}")
        assert (back.name, back.step, back.widths, back.settings) == (hn.name, 42, hn.widths, hn.settings)
        for a, b in zip(hn.parameters(), back.parameters()):
            assert torch.equal(a, b)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "hx.safetensors"), framework="pt") as f:
        assert "32.0.linear.0.weight" in f.keys() and f.metadata()["activation_func"] == '"tanh"'


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({64: Evil()}))
    with pytest.raises(OnewordError, match="evil.pt"):
        load_hypernetwork(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop(64), "no module for any context width"),
    (lambda d: d.update({"layer_structure": [2, 1]}), "must start and end with 1"),
    (lambda d: d[64][0].pop("linear.1.bias"), "module 64 K does not match layer structure 1, 2, 1"),
    (lambda d: d.update({64: d[64][0]}), "module 64 is not a pair"),
])
def test_broken_files_are_refused_naming_the_file_and_the_problem(tmp_path, mutate, message):
    data = a1111_file(tmp_path / "x.pt", 64, seed=4)
    mutate(data)
    torch.save(data, tmp_path / "x.pt")
    with pytest.raises(OnewordError) as error:
        load_hypernetwork(tmp_path / "x.pt")
    assert str(error.value).startswith(str(tmp_path / "x.pt")) and message in str(error.value)


def test_structure_rules_are_named():
    assert HypernetworkSettings(layer_structure=[1]).problems() == [
        "layer structure 1: needs at least two numbers, like 1, 2, 1"]
    assert HypernetworkSettings(layer_structure=[1, 0, 1]).problems() == [
        "layer structure 1, 0, 1: every number must be above 0"]
    assert HypernetworkSettings(dropout_structure=[0.1, 0, 0]).problems() == [
        "dropout structure 0.1, 0, 0: must start and end with 0"]
    assert HypernetworkSettings(dropout_structure=[0, 1, 0]).problems() == [
        "dropout structure 0, 1, 0: every rate must be at least 0 and below 1"]
    # A1111's rule for files that say use_dropout without a structure
    assert HypernetworkSettings(layer_structure=[1, 2, 2, 1], use_dropout=True).dropouts() == [0, 0.3, 0, 0]
    assert HypernetworkSettings(layer_structure=[1, 2, 2, 1], use_dropout=True,
                                last_layer_dropout=True).dropouts() == [0, 0.3, 0.3, 0]


def test_the_folder_scan_names_unusable_files_and_follows_each_folder_once(tmp_path, monkeypatch):
    from bounded import folders_listed, never_opened

    from oneword.hypernetworks.library import HypernetworkLibrary

    root = tmp_path / "hypernetworks"
    (root / "sub").mkdir(parents=True)
    a1111_file(root / "sub" / "good.pt", 64, seed=0)
    (root / "sub" / "again").symlink_to(root / "sub", target_is_directory=True)
    (root / "up").symlink_to(root, target_is_directory=True)
    (root / "gone.pt").symlink_to(root / "nowhere.pt")
    (root / "zero.pt").symlink_to("/dev/zero")
    folders_listed(monkeypatch, root, most=4)  # a walk that followed the loops would list them without end
    never_opened(monkeypatch, "zero.pt")  # reading the device would never end
    library = HypernetworkLibrary.scan(root)
    assert list(library.paths) == ["good"] and library.get("good").widths == [64]
    with pytest.raises(OnewordError) as error:
        library.get("zero")
    assert str(error.value) == f"<hypernet:zero>: {root / 'zero.pt'}: not a regular file (a character device)"
    with pytest.raises(OnewordError) as error:
        library.get("gone")
    assert str(error.value) == (f"<hypernet:gone>: {root / 'gone.pt'}: a dangling link (its target "
                                f"{root / 'nowhere.pt'} does not exist)")


def test_create_never_writes_through_or_over_a_link_nor_replaces_a_file_that_appears_meanwhile(tmp_path, tiny_sd1,
                                                                                                 monkeypatch):
    import oneword.hypernetworks.create as create

    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"mine")
    (tmp_path / "hn").mkdir()
    (tmp_path / "hn" / "linked.pt").symlink_to(outside)
    (tmp_path / "hn" / "dangling.pt").symlink_to(tmp_path / "nowhere.pt")
    for name, overwrite in (("linked", True), ("dangling", False)):
        config = CreateHypernetworkConfig(name, hypernetwork_dir=tmp_path / "hn", overwrite=overwrite)
        with pytest.raises(OnewordError) as err:
            create_hypernetwork_file(tiny_sd1, config)
        assert str(err.value) == f"NAME: {tmp_path / 'hn' / name}.pt is a link; nothing is written through it"
    assert outside.read_bytes() == b"mine" and not (tmp_path / "nowhere.pt").exists()

    def racing(model, config):  # another process writes the file after the check
        (tmp_path / "hn" / "raced.pt").write_bytes(b"first")
        return create_hypernetwork(model, config)

    monkeypatch.setattr(create, "create_hypernetwork", racing)
    with pytest.raises(OnewordError) as err:
        create_hypernetwork_file(tiny_sd1, CreateHypernetworkConfig("raced", hypernetwork_dir=tmp_path / "hn"))
    assert str(err.value) == f"{tmp_path / 'hn' / 'raced.pt'} already exists (use --overwrite to replace it)"
    assert (tmp_path / "hn" / "raced.pt").read_bytes() == b"first"
