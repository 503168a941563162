"""Load a single-file checkpoint in the original CompVis / Stability layout (`.safetensors`, `.ckpt`).

The model is built with empty weights, the file's tensors are read one part at a time, renamed with diffusers'
own conversion functions and assigned in place: the weights are never held twice, and they keep the file's
dtype (the caller picks the compute dtype). `.safetensors` tensors are read into fresh memory rather than
memory-mapped: the format packs tensors at any byte offset, and CPU kernels on unaligned weights round
differently (about 1e-6), so a file would not draw the same pixels as its diffusers folder.
`.ckpt` tensors are memory-mapped (torch.save aligns them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import torch
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
)
from safetensors import SafetensorError, safe_open

from oneword.errors import OnewordError, first_line
from oneword.models.base import BaseModel
from oneword.models.build import build_model
from oneword.models.detect import (
    ENCODER_PREFIXES,
    SD1_CLIP,
    SD2_OPEN_CLIP,
    UNET,
    VAE,
    detect_kind,
    infer_config,
    is_open_clip,
)
from oneword.models.export import original_state_dict
from oneword.models.finite import non_finite_problem
from oneword.models.recorded import apply_recorded, read_recorded
from oneword.safeload import load_pickle

_DROPPED = re.compile(
    r"^first_stage_model\.loss\."  # the VAE's training loss (discriminator, logvar)
    r"|position_ids$"  # a fixed buffer (0..76) in older transformers, not a weight
    r"|logit_scale$"  # CLIP's contrastive temperature, unused for conditioning
)
_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
_SD1_OLD_CLIP = tuple(f"{SD1_CLIP}{part}." for part in ("embeddings", "encoder", "final_layer_norm"))
_OPTIONAL = re.compile(r"position_ids$|^cond_stage_model\.model\.text_projection$")  # unused by SD conditioning
_V_NAME = re.compile(r"768|v[-_]?pred|(^|[-_. ])v([-_. ]|$)")


class _Tensors(Protocol):
    """The tensors of one checkpoint file, read on demand."""

    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, str]

    def read(self, keys: Iterable[str]) -> dict[str, torch.Tensor]:
        """The named tensors; the reader keeps no reference to them."""
        ...


def load_single_file(path: Path, prediction_type: str | None = None) -> BaseModel:
    """Load an SD 1.x, SD 2.x or SDXL base checkpoint from one `.safetensors` or `.ckpt` file (local only).

    The prediction type is, in order: `prediction_type` (`--prediction-type`); the file's own ModelSpec
    metadata (`modelspec.prediction_type`: `v` or `epsilon`), kohya's `ss_v_parameterization`, or a `v_pred`
    key (ComfyUI's marker); for SD 2.x only, the file name: v-prediction when the stem contains `768`,
    `vpred` / `v-pred` / `v_pred`, or a lone `v` between separators (`768-v-ema`, `sd21-v`), as the official
    files are named (`v2-1_768-ema-pruned` vs `v2-1_512-ema-pruned`); else epsilon. The SD 2.x weights of
    the 512 epsilon and 768 v models cannot be told apart (A1111 runs a test step to decide, diffusers
    guesses from the training step count), so a name that does not follow this needs `--prediction-type`.
    """
    path = Path(path)
    with _open(path) as tensors:
        kind = _in_file(path, detect_kind, tensors.shapes)
        prediction = _prediction_type(path, kind, tensors, prediction_type)
        if kind == "sd2" and prediction == "v_prediction":
            kind = "sd2-v"
        config = _in_file(path, infer_config, kind, tensors.shapes)
        record = _in_file(path, read_recorded, tensors.metadata, len(config["text_encoders"]))
        if record is not None:
            apply_recorded(config, record)
        config["scheduler"]["prediction_type"] = prediction
        _apply_resolution(config, tensors.metadata)
        model = _build(path, kind, config, record is not None)
        _check_keys(path, model, tensors.shapes)
        _load_unet(path, model, tensors)
        _load_vae(path, model, tensors)
        _load_encoders(path, model, tensors)
    return model


def _build(path: Path, kind: str, config: dict[str, Any], recorded: bool) -> BaseModel:
    try:
        return build_model(kind, config, name=path.stem, empty=True, source=path)
    except (ValueError, TypeError) as e:  # diffusers and transformers refuse settings that do not fit the sizes
        which = "its recorded settings" if recorded else f"{kind}'s usual settings (the file records none)"
        raise OnewordError(f"{path}: unknown architecture: its weights do not build a model with {which} "
                           f"({first_line(e)})") from None


def _in_file(path: Path, fn, *args) -> Any:
    try:
        return fn(*args)
    except OnewordError as e:
        raise OnewordError(f"{path}: {e}") from None


def _prediction_type(path: Path, kind: str, tensors: _Tensors, override: str | None) -> str:
    if override:
        return override
    declared = tensors.metadata.get("modelspec.prediction_type", "").strip().lower()
    if declared in ("v", "v_prediction", "epsilon", "eps"):
        return "v_prediction" if declared.startswith("v") else "epsilon"
    if tensors.metadata.get("ss_v_parameterization", "").strip().lower() == "true" or "v_pred" in tensors.shapes:
        return "v_prediction"
    if kind == "sd2" and _V_NAME.search(path.stem.lower()):
        return "v_prediction"
    return "epsilon"


def _apply_resolution(config: dict[str, Any], metadata: dict[str, str]) -> None:
    """Take the default image size from ModelSpec's `modelspec.resolution` ("768x768") when the file has it."""
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", metadata.get("modelspec.resolution", ""))
    if not m:
        return
    scale = 2 ** (len(config["vae"]["block_out_channels"]) - 1)
    side = int(m[2])
    if side % scale == 0:
        config["vae"]["sample_size"] = side
        config["unet"]["sample_size"] = side // scale


def _check_keys(path: Path, model: BaseModel, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a file that lacks weights the inferred model needs, or has them in other shapes, before reading."""
    expected = {k: tuple(t.shape) for k, t in original_state_dict(model).items() if not _OPTIONAL.search(k)}
    missing = [k for k in expected if k not in shapes]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise OnewordError(f"{path}: missing {len(missing)} weights of an {model.kind} checkpoint: {shown}")
    wrong = [k for k in expected if _squeeze(shapes[k]) != _squeeze(expected[k])]
    if wrong:
        k = wrong[0]
        raise OnewordError(
            f"{path}: {len(wrong)} weights have unexpected shapes for an {model.kind} checkpoint, "
            f"first {k}: {list(shapes[k])}, expected {list(expected[k])}"
        )


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    # 1x1 convs and linears hold the same weights: (C, C, 1, 1) == (C, C) (the VAE's attention in some files).
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _load_unet(path: Path, model: BaseModel, tensors: _Tensors) -> None:
    checkpoint = tensors.read(k for k in tensors.shapes if k.startswith(UNET))
    converted = convert_ldm_unet_checkpoint(checkpoint, dict(model.unet.config))
    del checkpoint
    _assign(path, "UNet", model.unet, converted)


def _load_vae(path: Path, model: BaseModel, tensors: _Tensors) -> None:
    checkpoint = tensors.read(k for k in tensors.shapes if k.startswith(VAE) and not _DROPPED.search(k))
    converted = convert_ldm_vae_checkpoint(checkpoint, dict(model.vae.config))
    del checkpoint
    _assign(path, "VAE", model.vae, converted)


def _load_encoders(path: Path, model: BaseModel, tensors: _Tensors) -> None:
    for prefix, encoder in zip(ENCODER_PREFIXES[model.kind], model.encoders):
        keys = [k for k in tensors.shapes if k.startswith(prefix) and not _DROPPED.search(k)]
        if is_open_clip(prefix):
            if model.kind in ("sd2", "sd2-v"):
                # diffusers' SD 2.x encoder ends one layer early (the penultimate layer is what SD 2.x reads)
                # and has no projection.
                last = max(int(k.split(".")[4]) for k in keys if k.startswith(f"{prefix}transformer.resblocks."))
                unused = (f"{prefix}transformer.resblocks.{last}.", f"{prefix}text_projection")
                keys = [k for k in keys if not k.startswith(unused)]
            checkpoint = tensors.read(keys)
            converted = convert_open_clip_checkpoint(encoder.model, checkpoint, prefix=prefix)
        else:
            checkpoint = tensors.read(keys)
            converted = convert_ldm_clip_checkpoint(checkpoint)
        del checkpoint
        _assign(path, f"text encoder {encoder.spec.key}", encoder.model, _fit_clip_names(converted, encoder.model))


def _fit_clip_names(tensors: dict[str, torch.Tensor], module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # transformers 5 names CLIPTextModel's weights without the `text_model.` prefix that files and
    # CLIPTextModelWithProjection use; old SD 1.x files lack it too.
    wanted = set(module.state_dict(keep_vars=True))
    fitted = {}
    for key, t in tensors.items():
        if key not in wanted:
            for candidate in (key.removeprefix("text_model."), f"text_model.{key}"):
                if candidate in wanted:
                    key = candidate
                    break
        fitted[key] = t
    return fitted


def _assign(path: Path, part: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    whole = next((k for k, t in tensors.items() if not t.is_floating_point()), None)
    if whole is not None:
        dtype = str(tensors[whole].dtype).removeprefix("torch.")
        raise OnewordError(f"{path}: the {part} weight {whole} holds {dtype} numbers, not floating-point weights")
    try:
        module.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise OnewordError(f"{path}: the {part} weights do not fit ({detail[:300]})") from None
    tensors.clear()


def canonical_names(keys: Iterable[str]) -> dict[str, str]:
    """Stored key -> the name this loader reads it by, for the layouts A1111 renames on load.

    SD 1.x files saved with old transformers lack `text_model.` in the text encoder's names; SD 2.x turbo keeps
    its OpenCLIP encoder under SGM's `conditioner.embedders.0.model.` (an SDXL refiner has that too, but with a
    `label_emb` in its UNet).
    """
    keys = list(keys)
    turbo = (any(k.startswith("conditioner.embedders.0.model.") for k in keys)
             and f"{UNET}label_emb.0.0.weight" not in keys)
    names = {}
    for key in keys:
        name = key
        if key.startswith(_SD1_OLD_CLIP):
            name = key.replace(SD1_CLIP, f"{SD1_CLIP}text_model.", 1)
        elif turbo and key.startswith("conditioner.embedders.0.model."):
            name = key.replace("conditioner.embedders.0.model.", SD2_OPEN_CLIP, 1)
        names[key] = name
    return names


@contextmanager
def _open(path: Path) -> Iterator[_Tensors]:
    if not path.is_file():
        raise OnewordError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise OnewordError(f"{path}: empty file, not a checkpoint")
    if path.suffix.lower() != ".safetensors":
        yield _PickleFile(path, load_pickle(path, mmap=True))
        return
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:  # checks the header and the file size
            metadata = dict(handle.metadata() or {})
            keys = list(handle.keys())
    except SafetensorError as e:
        raise OnewordError(f"{path}: not a readable safetensors file ({e})") from None
    with path.open("rb") as file:
        yield _SafetensorsFile(file, keys, metadata)


class _SafetensorsFile:
    """Tensors of a `.safetensors` file: names and shapes from its header, each tensor read on request."""

    def __init__(self, file: BinaryIO, keys: list[str], metadata: dict[str, str]):
        self._file = file
        self.metadata = metadata
        # Layout: 8-byte little-endian header size, the JSON header, then the tensors' bytes (offsets from there).
        size = int.from_bytes(file.read(8), "little")
        header = json.loads(file.read(size))
        self._start = 8 + size
        self._stored = {name: key for key, name in canonical_names(keys).items()}
        self._entries = {name: header[key] for name, key in self._stored.items()}
        self.shapes = {name: tuple(e["shape"]) for name, e in self._entries.items()}

    def read(self, keys: Iterable[str]) -> dict[str, torch.Tensor]:
        """The named tensors, each read from the file into freshly allocated (aligned) memory."""
        return {k: self._read(k) for k in keys}

    def _read(self, name: str) -> torch.Tensor:
        entry = self._entries[name]
        begin, end = entry["data_offsets"]
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            stored = self._stored[name]
            raise OnewordError(f"{self._file.name}: {stored} has dtype {entry['dtype']}, not a model weight")
        tensor = torch.empty(entry["shape"], dtype=dtype)
        buffer = tensor.reshape(-1).view(torch.uint8).numpy()  # the tensor's own bytes, written in place
        self._file.seek(self._start + begin)
        if self._file.readinto(buffer) != end - begin:
            raise OnewordError(f"{self._file.name}: {self._stored[name]} is cut short")
        problem = non_finite_problem(self._stored[name], tensor)
        if problem:
            raise OnewordError(f"{self._file.name}: {problem}")
        return tensor


class _PickleFile:
    """Tensors of a `.ckpt` / `.pt` checkpoint: a dict with `state_dict`, or the state dict itself."""

    def __init__(self, path: Path, loaded: Any):
        while isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
            loaded = loaded["state_dict"]
        if not isinstance(loaded, dict):
            raise OnewordError(f"{path}: not a model checkpoint (it holds a {type(loaded).__name__}, not tensors)")
        tensors = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        self._path = path
        self._stored = {name: key for key, name in canonical_names(tensors).items()}
        self._tensors = {name: tensors[key] for name, key in self._stored.items()}
        self.metadata: dict[str, str] = {}
        self.shapes = {k: tuple(v.shape) for k, v in self._tensors.items()}

    def read(self, keys: Iterable[str]) -> dict[str, torch.Tensor]:
        """The named tensors, handed over: the reader drops its own reference to each."""
        read = {k: self._tensors.pop(k) for k in list(keys)}
        for name, tensor in read.items():
            problem = non_finite_problem(self._stored[name], tensor)
            if problem:
                raise OnewordError(f"{self._path}: {problem}")
        return read
