"""What a file is, read without running anything from it: an embedding, a hypernetwork, a LoRA (LoCon, LoHa, LoKr,
PEFT), a LoRA with bundled embeddings, or a base model; its architecture, sizes, trigger words and training
metadata. A pickle that would run code is reported as unsafe and not loaded (oneword/safeload.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

from oneword.errors import OnewordError
from oneword.lora.bundle import bundled_parts, layout_name
from oneword.models.detect import UNET, detect_kind

if TYPE_CHECKING:
    from oneword.embeddings.embedding import Embedding

CONTEXT_ARCHITECTURES = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}
"""A UNet's cross-attention width (a text encoder's for SD 1.x/2.x) -> the base architecture."""
MODEL_ARCHITECTURES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
METADATA_FACTS = (("ss_steps", "steps"), ("ss_sd_model_name", "base model"), ("ss_sd_model_hash", "base model hash"),
                  ("ss_base_model_version", "base model version"), ("ss_network_module", "network module"),
                  ("ss_unet_lr", "UNet rate"), ("ss_text_encoder_lr", "text-encoder rate"),
                  ("ss_output_name", "output name"), ("sshs_model_hash", "hash"))


@dataclass
class Inspection:
    """What `inspect_file` found in one file."""

    path: Path
    what: str
    """embedding, hypernetwork, LoRA, LoCon, LoHa, LoKr, PEFT LoRA, bundle (LoRA + embeddings), base model, or
    unknown."""
    safe: bool = True
    safety: str = "safe: read as tensors only"
    architecture: str = "unknown"
    facts: list[tuple[str, str]] = field(default_factory=list)
    """(label, value) in the order shown."""
    words: list[str] = field(default_factory=list)
    """Trigger words: an embedding's word, a bundle's words, a LoRA's trigger phrase."""
    content: Any = None
    """What was read: the Embedding, Hypernetwork or Lora."""
    layout: str = ""
    """A LoRA's key layout: kohya or diffusers."""
    problem: str = ""
    """Why the file is not one of the known kinds, when `what` is unknown."""
    bundled: dict[str, list[str]] = field(default_factory=dict)
    """A LoRA file's bundled words -> the parts of their `bundle_emb.WORD.PART` keys, each word oneword reads or
    not (oneword/lora/bundle.py)."""


def embedding_architecture(embedding: Embedding) -> str:
    """SD 1.x (768), SD 2.x (1024), SDXL (clip_l 768 + clip_g 1280), or unknown with the width."""
    return widths_architecture(embedding.widths)


def widths_architecture(widths: dict[str, int]) -> str:
    """An embedding's architecture from its widths by encoder key (`*`, or SDXL's `clip_l` and `clip_g`)."""
    if "*" not in widths:
        return f"SDXL (clip_l {widths['clip_l']} + clip_g {widths['clip_g']})"
    width = widths["*"]
    return f"{CONTEXT_ARCHITECTURES.get(width, 'unknown')} (width {width})"


def _lora_architecture(lora: Any) -> str:
    keys = list(lora.layers)
    if any(k.startswith(("lora_te1_", "lora_te2_")) for k in keys):
        return "SDXL"
    for key, layer in lora.layers.items():
        down = getattr(layer, "down", None)
        if key.endswith("attn2_to_k") and down is not None:
            width = down.shape[1]
            return f"{CONTEXT_ARCHITECTURES.get(width, 'unknown')} (context width {width})"
    return "unknown"


def _header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]] | None:
    """A safetensors file's tensor shapes and metadata, read from its header alone; None for other files."""
    if path.suffix.lower() != ".safetensors":
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        raise OnewordError(f"{path}: not a readable safetensors file ({error})") from None


def inspect_file(path: Path, content: bool = True) -> Inspection:
    """What `path` is, read safely: a pickle that would run code is reported, never loaded. Without `content`, a
    plain LoRA or an embedding in a safetensors file is described from its header and numbers alone, without
    torch (oneword/inspect/summary.py), and its `content` stays None."""
    path = Path(path)
    if not path.is_file():
        raise OnewordError(f"{path}: no such file")
    header = _header(path)
    shapes = header[0] if header else None
    if header is None and path.suffix.lower() in (".pt", ".ckpt", ".bin", ".pth"):
        from oneword.safeload import UnsafePickle, load_pickle

        try:
            data = load_pickle(path, mmap=True, parameter_dict=True)
        except UnsafePickle as error:
            reason = str(error).removeprefix(f"{path}: ").removeprefix("refused: ")
            return Inspection(path, "unknown", safe=False, safety=f"unsafe: {reason}; not loaded",
                              problem="not loaded: it would run code")
        except OnewordError as error:
            return Inspection(path, "unknown", problem=str(error))
        state = data.get("state_dict", data) if isinstance(data, dict) else {}
        shapes = {str(k): tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
        what = "safe: a pickle of plain tensors (loaded with weights_only)"
    else:
        what = "safe: safetensors (tensors only)"
    if shapes is not None and any(k.startswith(UNET) for k in shapes):
        return _base_model(path, shapes, what)
    found = _from_header(path, *header) if header is not None and not content else None
    found = found or _read(path, list(shapes or ()))
    found.safety = what
    return found


def _from_header(path: Path, shapes: dict[str, tuple[int, ...]], metadata: dict[str, str]) -> Inspection | None:
    """A plain LoRA or an embedding described from its header and numbers, without torch; None for other files."""
    from oneword.inspect.summary import HeaderLora, summarize

    read = summarize(path, shapes, metadata)
    if isinstance(read, HeaderLora):
        return _lora_inspection(path, read, "kohya", read.kind, [], {})
    if read is None:
        return None
    found = _embedding(path, read)
    found.content = None  # a HeaderEmbedding holds no vectors
    return found


def _base_model(path: Path, shapes: dict[str, tuple[int, ...]], safety: str) -> Inspection:
    try:
        kind = MODEL_ARCHITECTURES[detect_kind(shapes)]
    except OnewordError as error:
        kind = f"unknown ({error})"
    return Inspection(path, "base model", safety=safety, architecture=kind, facts=[("tensors", str(len(shapes)))])


def _read(path: Path, keys: list[str]) -> Inspection:
    """The first reader that takes the file (its tensor names `keys`): LoRA, embedding, hypernetwork."""
    from oneword.embeddings.formats import load_embedding_file
    from oneword.hypernetworks.formats import load_hypernetwork
    from oneword.lora.read import read_layout

    problems = []

    def lora(path: Path, read: tuple) -> Inspection:
        return _lora(path, read, bundled_parts(keys))

    for reader, describe in ((read_layout, lora), (load_embedding_file, _embedding),
                             (load_hypernetwork, _hypernetwork)):
        try:
            return describe(path, reader(path))
        except OnewordError as error:
            problems.append(str(error).removeprefix(f"{path}: "))
    return Inspection(path, "unknown", problem="; ".join(problems))


def _lora(path: Path, read: tuple, bundled: dict[str, list[str]]) -> Inspection:
    from oneword.lora.read import Unusable, lora_kind

    lora, layout = read
    unread = [k for k, v in lora.layers.items() if isinstance(v, Unusable)]
    return _lora_inspection(path, lora, layout, lora_kind(lora, layout), unread, bundled, content=lora)


def _lora_inspection(path: Path, lora: Any, layout: str, kind: str, unread: list[str],
                     bundled: dict[str, list[str]], content: Any = None) -> Inspection:
    """The inspection of a LoRA read (a Lora, or a HeaderLora: its `layers`, `metadata`, `embeddings` and
    `trigger`), of the given kind, with the keys of the layers that cannot be applied."""
    what = {"PEFT": "PEFT LoRA"}.get(kind, kind)
    skipped = set(unread)
    layers = {k: v for k, v in lora.layers.items() if k not in skipped}
    ranks = sorted({getattr(layer, "rank", 0) for layer in layers.values()} - {0, None})
    alphas = sorted({getattr(layer, "alpha", None) for layer in layers.values()} - {None})
    parts = [p for p, prefix in (("UNet", "lora_unet_"), ("text encoder", "lora_te")) if any(
        k.startswith(prefix) for k in layers)]
    facts = [("layers", f"{len(layers)} ({', '.join(parts)})"), ("rank", ", ".join(map(str, ranks)) or "-"),
             ("alpha", ", ".join(f"{a:g}" for a in alphas) or "-")]
    facts += [(label, lora.metadata[key]) for key, label in METADATA_FACTS if lora.metadata.get(key)]
    words = list(lora.embeddings)
    if words:
        what = f"bundle ({what} + {len(words)} embedding{'s' if len(words) > 1 else ''})"
        facts += [(f"bundled word {w}", f"{e.n_vectors} vectors, {embedding_architecture(e)}"
                   + (f", {layout_name(bundled[w])}" if w in bundled else "")) for w, e in lora.embeddings.items()]
    if unread:
        facts.append(("not read", f"{len(unread)} layers (e.g. {unread[0]})"))
    trigger = [lora.trigger] if lora.trigger and lora.trigger not in words else []
    return Inspection(path, what, architecture=_lora_architecture(lora), facts=facts, words=words + trigger,
                      content=content, layout=layout, bundled=bundled)


def _embedding(path: Path, embedding: Any) -> Inspection:
    """The inspection of an Embedding (or of a HeaderEmbedding, which names the same facts)."""
    facts = [("vectors", str(embedding.n_vectors))]
    for label, value in (("steps", embedding.step), ("base model", embedding.sd_checkpoint_name),
                         ("base model hash", embedding.sd_checkpoint)):
        if value is not None:
            facts.append((label, str(value)))
    return Inspection(path, "embedding", architecture=widths_architecture(embedding.widths), facts=facts,
                      words=[embedding.name], content=embedding)


def _hypernetwork(path: Path, hypernetwork: Any) -> Inspection:
    widths = hypernetwork.widths
    # A1111 makes modules for the context width and the UNet's attention widths (SD 1.x: 768, 320, 640, 1280)
    architecture = next((CONTEXT_ARCHITECTURES[w] for w in (2048, 1024, 768) if w in widths), "unknown")
    facts = [("widths", ", ".join(map(str, widths))), ("layer structure",
             ", ".join(f"{x:g}" for x in hypernetwork.settings.layer_structure)), ("steps", str(hypernetwork.step))]
    if hypernetwork.sd_checkpoint_name:
        facts.append(("base model", hypernetwork.sd_checkpoint_name))
    return Inspection(path, "hypernetwork", architecture=f"{architecture} (widths {', '.join(map(str, widths))})",
                      facts=facts, content=hypernetwork)
