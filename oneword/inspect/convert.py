"""`oneword inspect FILE --convert TOOL --out DIR`: write what TOOL needs to load what FILE holds.

A bundle becomes its LoRA without the `bundle_emb.*` keys (every other tensor and the metadata as they were, the
hash recomputed) and each word as an embedding file; an embedding becomes the tool's embedding file (A1111 `.pt`,
SDXL `.safetensors`; one tensor per file for diffusers, one file per SDXL encoder); a diffusers/PEFT LoRA gets
kohya's names for A1111 and kohya; a `.safetensors` hypernetwork becomes A1111's `.pt`.

Names: an embedding file is named by its word (A1111 and ComfyUI call an embedding by its file's stem), the LoRA or
hypernetwork by the file's stem; where that name is a word's file or the file being converted, the LoRA is
`STEM-lora.safetensors`. Every name goes through `path_inside` (a word that is no plain file name is refused), and
every output of every file is checked (a file already there, the input itself, two outputs of one name) before any
is written.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from oneword.embeddings.embedding import Embedding
from oneword.errors import OnewordError
from oneword.files import atomic_write
from oneword.inspect.describe import Inspection
from oneword.inspect.tools import TOOLS, support
from oneword.lora.bundle import PREFIX
from oneword.outputs import folder_problem, path_inside

TARGETS = {tool.lower(): tool for tool in TOOLS if tool != "oneword"}
"""`--convert` values (lowercase) -> the tool."""
RENAMED = "-lora"
"""Added to the stem of a LoRA whose name a word's file or the converted file has."""


@dataclass(frozen=True)
class Output:
    """One file a conversion writes."""

    path: Path
    what: str
    """What it is, as `wrote PATH: WHAT` says."""
    write: Callable[[IO[bytes]], object]
    source: Path
    """The file converted."""
    label: str
    """The piece of the file it holds, as problems name it: `the word 'x'`, `its LoRA`."""


def check_convertible(found: Inspection, tool: str) -> str:
    """The tool `--convert` names; OnewordError when it names none or `found` is unsafe or unknown."""
    if tool.lower() not in TARGETS:
        raise OnewordError(f"--convert must be one of {', '.join(TARGETS)}, not {tool!r}")
    if not found.safe:
        raise OnewordError(f"{found.path}: not converted: it would run code on loading")
    if found.what == "unknown":
        raise OnewordError(f"{found.path}: not converted: {found.problem or 'not a file oneword recognises'}")
    return TARGETS[tool.lower()]


def convert(found: Inspection, tool: str, out: Path, *, overwrite: bool = False) -> list[tuple[Path, str]]:
    """Write what `tool` needs of `found` into `out`: (file, what it is) for each file written; [] when the tool
    loads the file as it is. OnewordError, with nothing written, when it cannot be converted for that tool or an
    output cannot be written (see `plan_outputs`)."""
    (outputs,) = convert_files([found], tool, out, overwrite=overwrite)
    return [(output.path, output.what) for output in outputs]


def convert_files(found: list[Inspection], tool: str, out: Path, *, overwrite: bool = False) -> list[list[Output]]:
    """Write what `tool` needs of each of `found` into `out`, every output checked before any is written; the
    outputs of each file ([] for one the tool loads as it is)."""
    planned = plan_outputs(found, tool, out, overwrite=overwrite)
    write_outputs([output for outputs in planned for output in outputs], overwrite=overwrite)
    return planned


def plan_outputs(found: list[Inspection], tool: str, out: Path, *, overwrite: bool = False) -> list[list[Output]]:
    """The files `tool` needs of each of `found`, in `out`, checked together before any is written: OnewordError
    naming every problem (an unconvertible file, a name that is no plain file name, a file already there without
    `overwrite`, an output that is a converted file, two outputs of one name)."""
    tools = [check_convertible(item, tool) for item in found]  # every file before any output is planned
    tool = tools[0] if tools else tool
    problem = folder_problem("--out", Path(out))
    if problem:
        raise OnewordError(problem)
    inputs = {_key(item.path): item.path for item in found}
    planned, problems, claimed = [], [], {}
    for item in found:
        outputs = []
        for name, label, what, write in _pieces(item, tool, Path(out)):
            try:
                path = _checked_path(Path(out), name, item, label, inputs, overwrite)
            except OnewordError as error:
                problems.append(str(error))
                continue
            other = claimed.setdefault(_key(path), (item.path, label))
            if other != (item.path, label):
                whose = f"from {other[0]}" if other[0] != item.path else f"for {other[1]}"
                problems.append(f"{item.path}: {label}: {path} is written {whose} too")
                continue
            outputs.append(Output(path, what, write, item.path, label))
        planned.append(outputs)
    if problems:
        raise OnewordError("; ".join(problems))
    return planned


def write_outputs(outputs: list[Output], *, overwrite: bool = False) -> None:
    """Write the planned files; when one fails, the files this call created are removed again."""
    created = []
    try:
        for output in outputs:
            existed = os.path.lexists(output.path)
            try:
                atomic_write(output.path, output.write, overwrite=overwrite)
            except FileExistsError:
                raise OnewordError(f"{output.source}: {output.label}: {output.path} appeared while converting "
                                   "(not replaced)") from None
            if not existed:
                created.append(output.path)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise


def _key(path: Path) -> str:
    """A path as case-insensitive file systems (Windows, macOS) compare it."""
    return os.path.normcase(str(Path(path).resolve())).casefold()


def _checked_path(out: Path, name: str, found: Inspection, label: str, inputs: dict[str, Path],
                  overwrite: bool) -> Path:
    """`out/name` through `path_inside`; OnewordError when it would replace a file being converted."""
    what = f"{found.path}: {label}"
    candidate = Path(out).resolve() / name if "/" not in name and "\\" not in name else None
    if candidate is not None and (_key(candidate) in inputs or any(
            candidate.exists() and os.path.samefile(candidate, path) for path in inputs.values())):
        raise OnewordError(f"{what} would be written over the file being converted; choose another --out")
    try:
        return path_inside(out, name, what=what, overwrite=overwrite)
    except OnewordError as error:
        message = str(error)
        if message.endswith("already exists (not replaced)"):
            message = message.removesuffix(")") + "; --overwrite replaces it)"
        raise OnewordError(message) from None


Piece = tuple[str, str, str, Callable[[IO[bytes]], object]]
"""(file name, label, what it is, writer) of one output before its path is checked."""


def _pieces(found: Inspection, tool: str, out: Path) -> list[Piece]:
    """The files `tool` needs of `found`, by name in `out`; [] when it loads the file as it is."""
    loads = {name: (ok, why) for name, ok, why in support(found)}
    if loads[tool][0]:
        return []
    if found.what == "embedding":
        return _embedding(found.content, tool)
    if found.what == "hypernetwork" and tool in ("A1111", "ComfyUI"):
        return [(f"{found.path.stem}.pt", "its hypernetwork", "hypernetwork (A1111 .pt)", _hypernetwork(found))]
    lycoris = any(kind in found.what for kind in ("LoHa", "LoKr"))
    if found.what == "hypernetwork" or (lycoris and tool in ("diffusers", "kohya")):
        why = f"{tool} does not read LyCORIS's LoHa or LoKr layers" if found.bundled else loads[tool][1]
        raise OnewordError(f"{found.path}: a {found.what} cannot be converted for {tool}: {why}")
    if found.layout == "diffusers" and tool in ("A1111", "kohya"):
        lora = _kohya_lora(found)
    elif found.bundled:
        lora = _without_bundle(found)
    else:
        raise OnewordError(f"{found.path}: a {found.what} cannot be converted for {tool}: {loads[tool][1]}")
    words = [piece for embedding in found.content.embeddings.values() for piece in _embedding(embedding, tool)]
    name = f"{found.path.stem}.safetensors"
    if name.casefold() in {word.casefold() for word, *_ in words} or _key(out / name) == _key(found.path):
        name = f"{found.path.stem}{RENAMED}.safetensors"
    return [(name, "its LoRA", *lora), *words]


def _embedding(embedding: Embedding, tool: str) -> list[Piece]:
    from oneword.embeddings.formats import safetensors_dict
    from oneword.embeddings.layouts import a1111_dict

    word = embedding.name
    label = f"the word {word!r}"
    if tool == "diffusers" and embedding.is_sdxl:
        pieces = []
        for key, encoder in (("clip_l", "text_encoder, tokenizer"), ("clip_g", "text_encoder_2, tokenizer_2")):
            single = Embedding(word, {"*": embedding.vectors[key]})
            pieces.append((f"{word}.{key}.safetensors", label, f"embedding {word}, {key}: load_textual_inversion(..., "
                           f"token={word!r}) with pipe.{encoder}", _safetensors(*safetensors_dict(single))))
        return pieces
    if tool == "A1111" and not embedding.is_sdxl:
        data = a1111_dict(embedding)
        return [(f"{word}.pt", label, f"embedding {word}", lambda file: _save_pt(data, file))]
    return [(f"{word}.safetensors", label, f"embedding {word}", _safetensors(*safetensors_dict(embedding)))]


def _safetensors(tensors: dict, metadata: dict[str, str]) -> Callable[[IO[bytes]], object]:
    from safetensors.torch import save

    return lambda file: file.write(save(tensors, metadata))


def _save_pt(data: object, file: IO[bytes]) -> None:
    from oneword.ptfile import save_pt

    save_pt(data, file)


def _hypernetwork(found: Inspection) -> Callable[[IO[bytes]], object]:
    from oneword.hypernetworks.formats import a1111_dict

    data = a1111_dict(found.content)
    return lambda file: _save_pt(data, file)


def _without_bundle(found: Inspection) -> tuple[str, Callable[[IO[bytes]], object]]:
    """The file's LoRA without its `bundle_emb.*` keys: every other tensor and the metadata as they were."""

    def write(file: IO[bytes]) -> None:
        from safetensors.torch import save

        from oneword.lora.read import read_tensors
        from oneword.lora.write import addnet_hash

        everything, metadata = read_tensors(found.path)  # a pickled bundle too, through the restricted loader
        tensors = {k: v.contiguous() for k, v in everything.items() if not k.startswith(PREFIX)}
        metadata["sshs_model_hash"] = addnet_hash(save(tensors))
        file.write(save(tensors, metadata))

    return f"LoRA without the bundled words ({len(found.bundled)} left out)", write


def _kohya_lora(found: Inspection) -> tuple[str, Callable[[IO[bytes]], object]]:
    """The file's LoRA/LoCon layers under kohya's names, at float32, without bundled words."""
    import torch

    from oneword.lora.network import LoraLayer
    from oneword.lora.read import Unusable
    from oneword.lora.write import addnet_hash, lora_tensors

    lora = found.content
    layers = {k: v for k, v in lora.layers.items() if isinstance(v, LoraLayer)}
    left = [k for k, v in lora.layers.items() if isinstance(v, Unusable)]
    tensors = lora_tensors(dataclasses.replace(lora, layers=layers, embeddings={}), torch.float32)

    def write(file: IO[bytes]) -> None:
        from safetensors.torch import save

        file.write(save(tensors, {"sshs_model_hash": addnet_hash(save(tensors))}))

    left = [k for k in left if not k.startswith(PREFIX)]
    note = f" ({len(left)} unreadable layers left out)" if left else ""
    words = f", without the bundled words ({len(found.bundled)} left out)" if found.bundled else ""
    return f"LoRA with kohya's layer names{note}{words}", write
