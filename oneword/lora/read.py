"""Read a LoRA file: kohya's LoRA and LoCon layout (`KEY.lora_down.weight`, `KEY.lora_up.weight`, `KEY.alpha`),
LyCORIS's LoHa (`KEY.hada_*`) and LoKr (`KEY.lokr_*`), and diffusers/PEFT files (oneword/lora/peft.py).

A file is refused (a OnewordError naming it and what is wrong) when it cannot be read, holds no LoRA layer or none
that can be applied, holds a NaN or infinite value or one beyond MAX_ABS, or would cost far more than its size to
read: more than MAX_TENSORS tensors, a header over MAX_HEADER_BYTES (both found from the header before any tensor
is read, as is a file without LoRA keys), a tensor that claims more numbers than the file stores. A layer the file
gives incompletely or malformed (half of it missing, halves of different ranks, factors that do not multiply, an
alpha that is not one number, a weight change over MAX_LAYER_NUMBERS) is kept as an `Unusable` with the reason,
which the fitting step (oneword/lora/fit.py) reports and leaves out; its shapes are checked before anything is
computed from it. Never unpickles with code: safetensors files are read as tensors only, `.pt`/`.ckpt`/`.bin`
files through oneword/safeload.py.
"""

from __future__ import annotations

import math
import pickletools
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import SafetensorError, safe_open

from oneword.embeddings.layouts import MAX_ABS
from oneword.errors import OnewordError
from oneword.lora.bundle import read_bundle
from oneword.lora.limits import MAX_HEADER_BYTES, MAX_LAYER_NUMBERS, MAX_TENSORS
from oneword.lora.lycoris import (
    HADA_PARTS,
    LOKR_PARTS,
    LohaLayer,
    LokrLayer,
    TuckerLoconLayer,
    loha_layer,
    lokr_layer,
)
from oneword.lora.network import Lora, LoraLayer, Misfit, header_step, pair_problem, single_number
from oneword.lora.peft import AdapterMetadataError, diffusers_layers, is_diffusers

SUFFIXES = (".safetensors", ".pt", ".ckpt", ".bin")
"""The files a LoRA folder is searched for (A1111 reads the first three; diffusers saves `.bin` too)."""
LEGACY_PICKLES = 4
"""The pickles that begin an older (non-zip) PyTorch file: a magic number, the protocol, system information, then
the saved object, whose storages are references (persistent ids) to the data after them."""
NOT_A_LORA = "not a LoRA (no lora_down/lora_up, hada_, lokr_ or lora_A/lora_B weights)"
_KOHYA = ("lora_down.weight", "lora_up.weight")
_KNOWN = (*_KOHYA, "lora_mid.weight", "alpha", *HADA_PARTS, *LOKR_PARTS)


@dataclass(frozen=True)
class Unusable:
    """A layer of the file that cannot be applied, and why."""

    reason: str


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A LoRA file's tensors and safetensors header metadata; OnewordError naming the file when it cannot be read,
    holds more than MAX_TENSORS tensors, or (safetensors: from the header alone) has no LoRA keys."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return _pickled_tensors(path), {}
    try:
        _check_header_size(path)
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())  # noqa: SIM118
            _check_count(len(keys), path)
            if not _lora_keys(keys):
                raise OnewordError(f"{path}: {NOT_A_LORA}")
            return {key: f.get_tensor(key) for key in keys}, dict(f.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise OnewordError(f"{path}: not a readable safetensors file ({error})") from None


def _lora_keys(keys: Iterable[str]) -> bool:
    """Whether some key names a LoRA part: kohya's or LyCORIS's `lora_*.PART`, or diffusers'."""
    keys = list(keys)
    return any(key.startswith("lora_") and "." in key for key in keys) or is_diffusers(keys)


def _check_header_size(path: Path) -> None:
    with path.open("rb") as f:
        prefix = f.read(8)
    size = int.from_bytes(prefix, "little") if len(prefix) == 8 else 0
    if size > MAX_HEADER_BYTES:
        raise OnewordError(f"{path}: a safetensors header of {size} bytes, more than any LoRA's (a few MB; at most "
                           f"{MAX_HEADER_BYTES >> 20} MiB are read); refused unread")


def _check_count(count: int, path: Path, unread: bool = True) -> None:
    if count > MAX_TENSORS:
        raise OnewordError(f"{path}: {count} tensors, more than any LoRA has (a few thousand; at most {MAX_TENSORS} "
                           f"are read); refused{' unread' if unread else ''}")


def _pickled_tensors(path: Path) -> dict[str, torch.Tensor]:
    from oneword.safeload import load_pickle

    _check_count(_stored_count(path), path)
    data = load_pickle(path)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise OnewordError(f"{path}: not a LoRA (not a dictionary of tensors)")
    _check_count(len(data), path, unread=False)
    return {str(k): v for k, v in data.items()}


def _stored_count(path: Path) -> int:
    """How many tensor storages a PyTorch file holds, known before anything is unpickled: a zip-format file's
    `data/` entries, or an older file's storage references counted in its pickles' opcodes (up to one past
    MAX_TENSORS); 0 for a file that is neither, which load_pickle then refuses with the reason."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                return sum(1 for name in archive.namelist() if "/data/" in name)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):  # a damaged zip: load_pickle says why
            return 0
    count = 0
    try:
        with path.open("rb") as f:
            stream = _Bounded(f, path.stat().st_size)
            for _ in range(LEGACY_PICKLES):
                for opcode, _, _ in pickletools.genops(stream):
                    count += opcode.name in ("BINPERSID", "PERSID")
                    if count > MAX_TENSORS:
                        return count
    except (ValueError, EOFError, OSError, UnicodeDecodeError):  # not a pickle, or a damaged one
        pass
    return count


class _Bounded:
    """A file read no further than its size, whatever length an opcode claims (a read of 2**62 bytes would
    otherwise reserve that much memory before finding the end of the file)."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self.file, self.size = file, size

    def read(self, n: int) -> bytes:
        return self.file.read(max(0, min(n, self.size - self.file.tell())))

    def readline(self) -> bytes:
        return self.file.readline()

    def tell(self) -> int:
        return self.file.tell()


def kohya_layers(tensors: dict[str, torch.Tensor]) -> dict[str, object]:
    """The LoRA/LoCon, LoHa and LoKr layers of a kohya-style state dict (`lora_*.PART`), by kohya key (alpha = rank
    where a layer has none); a layer the file gives incompletely, or with parts not read here, is an `Unusable`."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        layer, _, part = key.partition(".")
        if layer.startswith("lora_") and part:
            grouped.setdefault(layer, {})[part] = tensor
    return {key: _layer(parts) for key, parts in sorted(grouped.items())}


def _layer(parts: dict[str, torch.Tensor]) -> object:
    unknown = sorted(set(parts) - set(_KNOWN))
    if unknown:
        return Unusable(f"has {', '.join(unknown)}, which oneword does not apply")
    try:
        layer = _made(parts)
    except KeyError as missing:
        return Unusable(f"has no {missing.args[0]} weight")
    except Misfit as misfit:
        return Unusable(str(misfit))
    numbers = math.prod(layer.shape)
    if numbers > MAX_LAYER_NUMBERS:
        return Unusable(f"a weight change of {numbers} numbers, more than any layer of SD 1.x, 2.x or SDXL has "
                        f"(at most {MAX_LAYER_NUMBERS} are read)")
    return layer


def _made(parts: dict[str, torch.Tensor]) -> object:
    """The layer of a kohya key's parts; KeyError for a missing part, Misfit for parts that make none."""
    alpha = single_number(parts["alpha"], "alpha") if "alpha" in parts else None
    if any(part.startswith("hada_") for part in parts):
        return loha_layer(parts, alpha)
    if any(part.startswith("lokr_") for part in parts):
        return lokr_layer(parts, alpha)
    down, up = parts.get("lora_down.weight"), parts.get("lora_up.weight")
    if down is None or up is None:
        raise KeyError("lora_down" if down is None else "lora_up")
    mid = parts.get("lora_mid.weight")
    if mid is not None:
        TuckerLoconLayer(down, mid, up, 0.0).shape  # noqa: B018  (checks the three parts)
        alpha = alpha if alpha is not None else float(down.shape[0])
        return TuckerLoconLayer(down.float(), mid.float(), up.float(), alpha)
    problem = pair_problem(down, up)
    if problem:
        raise Misfit(problem)
    return LoraLayer(down.float(), up.float(), alpha if alpha is not None else float(down.shape[0]))


def _check_storage(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse tensors that are not plain real numbers, or that claim more numbers than the file stores (an
    expanded view in a pickle: a few bytes that would become gigabytes once copied); nothing is read yet."""
    for key, tensor in tensors.items():
        if tensor.layout != torch.strided or tensor.is_meta:
            raise OnewordError(f"{path}: not usable: {key} is a {str(tensor.layout).removeprefix('torch.')} tensor, "
                               "not a dense one")
        if tensor.is_complex() or tensor.dtype == torch.bool:
            raise OnewordError(f"{path}: not usable: {key} holds {str(tensor.dtype).removeprefix('torch.')} "
                               "values, not real numbers")
        needed, stored = tensor.numel() * tensor.element_size(), tensor.untyped_storage().nbytes()
        if needed > stored:
            raise OnewordError(f"{path}: not usable: {key} claims {needed} bytes of numbers but the file stores "
                               f"only {stored} (an expanded view)")


def _check_values(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse NaN, infinite values and magnitudes beyond MAX_ABS: trained LoRA weights stay within a few units, and
    such values only ever make the model overflow and the image black."""
    for key, tensor in tensors.items():
        if tensor.numel() == 0:
            continue
        numbers = tensor.float()
        if not bool(torch.isfinite(numbers).all()):
            raise OnewordError(f"{path}: not usable: {key} holds NaN or infinite values")
        largest = float(numbers.abs().max())
        if largest > MAX_ABS:
            raise OnewordError(f"{path}: not usable: {key} holds values as large as {largest:.3g} (usable weights "
                               f"stay far below {MAX_ABS:g})")


def read_layout(path: Path) -> tuple[Lora, str]:
    """The LoRA of a file and its layout: `kohya` (kohya and LyCORIS keys) or `diffusers` (PEFT or older)."""
    path = Path(path)
    tensors, metadata = read_tensors(path)
    _check_storage(tensors, path)
    layers, layout = kohya_layers(tensors), "kohya"  # bundle_emb.* keys do not start with lora_
    if not layers and is_diffusers(tensors):
        layout = "diffusers"
        try:
            found = diffusers_layers(tensors, metadata)
        except AdapterMetadataError as error:
            raise OnewordError(f"{path}: not usable: {error}") from None
        layers = {k: Unusable(v) if isinstance(v, str) else v for k, v in found.items()}
    if not layers:
        raise OnewordError(f"{path}: {NOT_A_LORA}")
    _check_values(tensors, path)
    if all(isinstance(layer, Unusable) for layer in layers.values()):
        key, layer = next(iter(layers.items()))
        raise OnewordError(f"{path}: not usable: no layer can be applied ({key}: {layer.reason})")
    embeddings, problems = read_bundle(tensors, metadata)
    for word, reason in problems.items():
        layers[f"bundle_emb.{word}"] = Unusable(reason)
    lora = Lora(path.stem, layers, metadata, step=header_step(metadata),
                trigger=metadata.get("modelspec.trigger_phrase") or None, embeddings=embeddings)
    return lora, layout


def read_lora(path: Path) -> Lora:
    """A LoRA file (kohya LoRA/LoCon, LyCORIS LoHa/LoKr, diffusers/PEFT) as a Lora named after its stem."""
    return read_layout(path)[0]


def lora_kind(lora: Lora, layout: str = "kohya") -> str:
    """What kind of LoRA it is, as people call them: LoRA, LoCon (3x3 convolutions too), LoHa, LoKr, or PEFT
    (a diffusers file); several joined by `+`."""
    if layout == "diffusers":
        return "PEFT"
    kinds = set()
    for layer in lora.layers.values():
        if isinstance(layer, LohaLayer):
            kinds.add("LoHa")
        elif isinstance(layer, LokrLayer):
            kinds.add("LoKr")
        elif isinstance(layer, TuckerLoconLayer):
            kinds.add("LoCon")
        elif isinstance(layer, LoraLayer):
            kinds.add("LoCon" if layer.down.dim() == 4 and layer.down.shape[-1] > 1 else "LoRA")
    if "LoCon" in kinds:
        kinds.discard("LoRA")
    return "+".join(sorted(kinds)) or "none"
