"""Hypernetwork files: A1111's `.pt` read (old key layouts too) and written; `.safetensors` as an option.

A1111 `.pt`: a dict with an integer key per context width, each holding a pair (K module state dict, V module
state dict) with keys `linear.N.weight`/`linear.N.bias`, plus `step`, `name`, `layer_structure`,
`activation_func`, `is_layer_norm`, `weight_initialization`, `use_dropout`, `dropout_structure`,
`last_layer_dropout`, `activate_output`, `sd_checkpoint`, `sd_checkpoint_name`, `optional_info`. The oldest
files (NovelAI's) have only the weights, named `linear1`/`linear2`, and mean structure 1, 2, 1 with no activation.

`.safetensors` (oneword's, since A1111 has none): the same tensors under `WIDTH.0.linear.N.weight` (0: K, 1: V)
and the settings as JSON strings in the header metadata.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from oneword.errors import OnewordError
from oneword.files import atomic_write
from oneword.hypernetworks.hypernetwork import (
    Hypernetwork,
    HypernetworkModule,
    HypernetworkSettings,
    format_numbers,
    state_shapes,
)
from oneword.ptfile import save_pt

SUFFIXES = (".pt", ".safetensors")
OLD_KEYS = {"linear1.weight": "linear.0.weight", "linear1.bias": "linear.0.bias",
            "linear2.weight": "linear.1.weight", "linear2.bias": "linear.1.bias"}
"""NovelAI-era module keys and their A1111 names."""
SAFETENSORS_FORMAT = "oneword-hypernetwork"
MAX_WIDTHS = 16
"""A model's attention sees a handful of context widths (SD: 320, 640, 768, 1280); a file with more is refused."""
MAX_ABS = 1e4
"""Largest weight magnitude accepted: trained weights stay within a few units; beyond this (or NaN, inf) the
modules only ever make the conditioning overflow and the image black."""


def a1111_dict(hypernetwork: Hypernetwork) -> dict[Any, Any]:
    """The dict A1111 saves (weights as float32 CPU tensors)."""
    s = hypernetwork.settings
    dropouts = s.dropouts()
    data: dict[Any, Any] = {
        width: tuple(_state(module) for module in pair) for width, pair in sorted(hypernetwork.layers.items())
    }
    data.update({
        "step": hypernetwork.step, "name": hypernetwork.name, "layer_structure": list(s.layer_structure),
        "activation_func": s.activation_func, "is_layer_norm": s.add_layer_norm,
        "weight_initialization": s.weight_initialization, "sd_checkpoint": hypernetwork.sd_checkpoint,
        "sd_checkpoint_name": hypernetwork.sd_checkpoint_name, "activate_output": s.activate_output,
        "use_dropout": s.use_dropout, "dropout_structure": dropouts,
        "last_layer_dropout": len(dropouts) > 1 and dropouts[-2] != 0, "optional_info": hypernetwork.optional_info,
    })
    return data


def _state(module: HypernetworkModule) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict((k, v.detach().to("cpu", torch.float32).clone()) for k, v in module.state_dict().items())


def save_hypernetwork(hypernetwork: Hypernetwork, path: Path, *, overwrite: bool = True) -> None:
    """Write A1111 `.pt` or `.safetensors` (by suffix), atomically; without `overwrite` an existing file is never
    replaced (FileExistsError)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise OnewordError(f"{path}: hypernetworks are written as .pt or .safetensors, not {suffix or 'no suffix'}")
    data = a1111_dict(hypernetwork)
    if suffix == ".pt":
        atomic_write(path, lambda f: save_pt(data, f), overwrite=overwrite)
        return
    import safetensors.torch

    tensors = {f"{width}.{i}.{key}": tensor for width in hypernetwork.widths
               for i, state in enumerate(data[width]) for key, tensor in state.items()}
    metadata = {"format": SAFETENSORS_FORMAT}
    metadata.update({k: json.dumps(v) for k, v in data.items() if isinstance(k, str)})
    blob = safetensors.torch.save(tensors, metadata=metadata)
    atomic_write(path, lambda f: f.write(blob), overwrite=overwrite)


def load_hypernetwork(path: Path) -> Hypernetwork:
    """Read a hypernetwork file; a OnewordError naming the file and the problem if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise OnewordError(f"{path}: no such hypernetwork file")
    if path.stat().st_size == 0:
        raise OnewordError(f"{path}: empty file, not a hypernetwork")
    if path.suffix.lower() == ".safetensors":
        data = _read_safetensors(path)
    else:
        from oneword.safeload import load_pickle

        data = load_pickle(path)
    return from_dict(data, path)


def _read_safetensors(path: Path) -> dict[Any, Any]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError) as e:
        raise OnewordError(f"{path}: not a readable safetensors file ({e})") from None
    if metadata.get("format") != SAFETENSORS_FORMAT:
        raise OnewordError(f"{path}: not a hypernetwork (its header has no format {SAFETENSORS_FORMAT!r})")
    data: dict[Any, Any] = {}
    for key, value in metadata.items():
        if key != "format":
            try:
                data[key] = json.loads(value)
            except ValueError:  # not JSON, or an integer of over 4,300 digits
                raise OnewordError(f"{path}: header entry {key!r} is not JSON") from None
    for key, tensor in tensors.items():
        width, index, name = (key.split(".", 2) + ["", ""])[:3]
        if not width.isdigit() or index not in ("0", "1") or not name:
            raise OnewordError(f"{path}: unexpected tensor {key!r} (expected WIDTH.0|1.linear.N.weight)")
        pair = data.setdefault(int(width), ({}, {}))
        pair[int(index)][name] = tensor
    return data


def settings_from(data: dict[Any, Any]) -> HypernetworkSettings:
    """The settings a file stores, with A1111's defaults for what old files lack."""
    structure = data.get("layer_structure") or [1, 2, 1]
    dropout = data.get("dropout_structure")
    return HypernetworkSettings(
        layer_structure=[float(x) for x in structure],
        activation_func=data.get("activation_func") or "linear",
        weight_initialization=data.get("weight_initialization") or "Normal",
        add_layer_norm=bool(data.get("is_layer_norm", False)),
        use_dropout=bool(data.get("use_dropout", False)),
        dropout_structure=[float(x) for x in dropout] if dropout is not None else None,
        last_layer_dropout=bool(data.get("last_layer_dropout", False)),
        activate_output=bool(data.get("activate_output", False)),
    )


def from_dict(data: Any, path: Path) -> Hypernetwork:
    """A Hypernetwork from A1111's dict (or the safetensors equivalent); `path` names the file in errors."""
    if not isinstance(data, dict):
        raise OnewordError(f"{path}: not a hypernetwork (the file holds no dict)")
    widths = sorted(k for k in data if isinstance(k, int) and not isinstance(k, bool))
    if not widths:
        raise OnewordError(f"{path}: not a hypernetwork (no module for any context width)")
    try:
        settings = settings_from(data)
    except (TypeError, ValueError, RuntimeError) as e:  # RuntimeError: a tensor where a setting should be
        raise OnewordError(f"{path}: unreadable settings ({e})") from None
    problems = settings.problems()
    if problems:
        raise OnewordError(f"{path}: {problems[0]}")
    states = _checked_states(data, widths, settings, path)  # before any module is built: nothing allocated yet
    layers = {}
    for width, pair in states.items():
        modules = []
        for state in pair:
            module = HypernetworkModule(width, settings)
            module.load_state_dict({k: v.float() for k, v in state.items()})
            modules.append(module.eval())
        layers[width] = (modules[0], modules[1])
    step = data.get("step")
    return Hypernetwork(
        name=_text(data.get("name")) or path.stem, settings=settings, layers=layers,
        step=step if isinstance(step, int) and not isinstance(step, bool) else 0,
        sd_checkpoint=_text(data.get("sd_checkpoint")), sd_checkpoint_name=_text(data.get("sd_checkpoint_name")),
        optional_info=_text(data.get("optional_info")),
    )


def _checked_states(data: dict[Any, Any], widths: list[int], settings: HypernetworkSettings,
                    path: Path) -> dict[int, tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """Width -> (K, V) state dicts under A1111's key names, each tensor checked against the settings' shapes.

    Only the stored tensors and the shapes the settings imply are looked at, so settings that would size
    gigabytes of modules cost nothing: the file must store every weight, or it is refused.
    """
    if len(widths) > MAX_WIDTHS:
        raise OnewordError(f"{path}: not a hypernetwork: modules for {len(widths)} context widths (a model's "
                           f"attention sees a handful; at most {MAX_WIDTHS} are read)")
    structure = format_numbers(settings.layer_structure)
    states = {}
    for width in widths:
        pair = data[width]
        if width < 1:
            raise OnewordError(f"{path}: module {width}: a context width is a whole number above 0")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(isinstance(s, dict) for s in pair):
            raise OnewordError(f"{path}: module {width} is not a pair of state dicts (K, V)")
        expected = state_shapes(width, settings)
        checked = []
        for which, state in zip("KV", pair):
            state = {OLD_KEYS.get(k, k): v for k, v in state.items()}
            problem = _state_problem(state, expected)
            if problem:
                raise OnewordError(f"{path}: module {width} {which} does not match layer structure {structure} "
                                   f"({problem})")
            checked.append(state)
        states[width] = (checked[0], checked[1])
    _check_stored(states, path)  # before reading any value: an expanded view would be read in full
    for width, pair in states.items():
        for which, state in zip("KV", pair):
            problem = _values_problem(state)
            if problem:
                raise OnewordError(f"{path}: module {width} {which}: {problem}")
    return states


def _state_problem(state: dict[Any, Any], expected: dict[str, tuple[int, ...]]) -> str:
    """What keeps `state` from being loaded into a module of these shapes, or "" when nothing does."""
    missing = [key for key in expected if key not in state]
    if missing:
        return f"missing {', '.join(missing)}"
    unexpected = sorted(str(key) for key in state if key not in expected)
    if unexpected:
        return f"unexpected {', '.join(unexpected)}"
    for key, shape in expected.items():
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            return f"{key} is not a tensor of floats"
        if tuple(tensor.shape) != shape:
            return f"{key} has shape {list(tensor.shape)}, expected {list(shape)}"
    return ""


def _values_problem(state: dict[str, torch.Tensor]) -> str:
    """NaN, inf or absurdly large weights, which would make every image black; "" when there are none."""
    for key, tensor in state.items():
        if tensor.numel() == 0:
            continue
        if not torch.isfinite(tensor).all():
            return f"{key} holds NaN or infinite values"
        largest = float(tensor.abs().max())
        if largest > MAX_ABS:
            return f"{key} holds values as large as {largest:.3g} (usable weights stay far below {MAX_ABS:g})"
    return ""


def _check_stored(states: dict[int, tuple[dict[str, torch.Tensor], ...]], path: Path) -> None:
    """Refuse tensors that claim more numbers than the file stores (expanded or shared views of one storage), and
    sparse or meta-device ones."""
    claimed, stored = 0, {}
    for width, pair in states.items():
        for which, state in zip("KV", pair):
            for key, tensor in state.items():
                if tensor.layout != torch.strided or tensor.is_meta:
                    raise OnewordError(f"{path}: module {width} {which}: {key} is not a dense tensor of stored "
                                       f"numbers ({str(tensor.layout).removeprefix('torch.')}, on {tensor.device})")
                claimed += tensor.numel() * tensor.element_size()
                storage = tensor.untyped_storage()
                stored[storage.data_ptr()] = storage.nbytes()
    if claimed > sum(stored.values()):
        raise OnewordError(f"{path}: not a hypernetwork: its weights claim {claimed} bytes but the file stores "
                           f"only {sum(stored.values())} (expanded or shared tensors)")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
