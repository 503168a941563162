"""Embeddings bundled in a LoRA file: `bundle_emb.WORD.PART`, one key per tensor of the word's embedding.

Who writes which PARTs, and who reads them (from each tool's code):
- A1111 (extensions-builtin/Lora/networks.py) gathers a word's PARTs into a dict and makes an embedding of it as
  of an embedding file (modules/textual_inversion `create_embedding_from_data`): `string_to_param.*` or any
  single tensor (its "diffusers concept" branch) for one encoder, `clip_l` and `clip_g` for SDXL. A single-encoder
  word with two tensors fails its "multiple terms" check, and the whole LoRA then fails to load. The word is
  made while `<lora:NAME:...>` is in the prompt, unless the embeddings folder has that word already.
- oneword's pivotal kind writes `string_to_param.*` ([n, dim], SD 1.x/2.x) or `clip_l` and `clip_g` (SDXL).
- OneTrainer (modelSaver/*LoRASaver.py, `bundle_additional_embeddings`) writes `clip_l` for SD 1.x/2.x (the one
  text encoder), `clip_l` and `clip_g` for SDXL, and `clip_l_out`/`clip_g_out` where the embedding has output
  vectors (they act on the text encoder's output).
- ComfyUI's LoRA loader (comfy/lora.py) skips every `bundle_emb` key ("lora key not loaded"); diffusers'
  `load_lora_weights` refuses the file; kohya's networks/lora.py loads its weights non-strictly and ignores them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from oneword.embeddings.embedding import SDXL_KEYS, Embedding, vector_problems

if TYPE_CHECKING:  # the key functions serve `oneword inspect`, which reads a file's header without torch
    import torch

PREFIX = "bundle_emb."
SINGLE = "string_to_param.*"
"""A1111's key of the vectors of a single-encoder embedding, after `bundle_emb.WORD.`."""
ONETRAINER_SINGLE = "clip_l"
"""OneTrainer's key of an SD 1.x/2.x word's vectors, after `bundle_emb.WORD.`."""
OUTPUT_PARTS = {"clip_l": "clip_l_out", "clip_g": "clip_g_out"}
"""OneTrainer's output vectors beside a word's input vectors: left aside, as in embedding files."""


def bundle_tensors(embeddings: dict[str, Embedding]) -> dict[str, torch.Tensor]:
    """The file keys of bundled embeddings: the vectors as float32, as embedding files keep them."""
    import torch

    tensors = {}
    for word, embedding in embeddings.items():
        for key, vectors in embedding.vectors.items():
            part = SINGLE if key == "*" else key
            tensors[f"{PREFIX}{word}.{part}"] = vectors.detach().to("cpu", torch.float32).contiguous()
    return tensors


def _split(key: str) -> tuple[str, str] | None:
    """(WORD, PART) of a `bundle_emb.WORD.PART` key, split at the first dot after the word as A1111 splits it."""
    if key.startswith(PREFIX) and key.count(".") > 1:
        word, part = key[len(PREFIX):].split(".", 1)
        return word, part
    return None


def bundled_parts(keys: Iterable[str]) -> dict[str, list[str]]:
    """WORD -> the PARTs of its `bundle_emb.WORD.PART` keys, in file order."""
    parts: dict[str, list[str]] = {}
    for split in filter(None, map(_split, keys)):
        parts.setdefault(split[0], []).append(split[1])
    return parts


def bundled_words(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """WORD -> {part after the word: tensor} for every `bundle_emb.WORD.PART` key."""
    words: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        split = _split(key)
        if split:
            words.setdefault(split[0], {})[split[1]] = tensor
    return words


def layout_name(parts: Iterable[str]) -> str:
    """Whose layout a word's PARTs are: A1111's (string_to_param.*), SDXL's (clip_l, clip_g) or OneTrainer's."""
    parts = set(parts)
    if parts == {SINGLE}:
        return f"A1111's layout ({SINGLE})"
    if parts == set(SDXL_KEYS):
        return "SDXL layout (clip_l, clip_g)"
    return f"OneTrainer's layout ({', '.join(sorted(parts))})"


def a1111_problem(parts: dict[str, list[str]]) -> str:
    """Why A1111 fails to load a LoRA file whose words have these PARTs ("" when it loads): a single-encoder word
    (no clip_g) with more than one tensor fails its "embedding file has multiple terms" check."""
    many = {word: names for word, names in parts.items() if SINGLE not in names and "clip_g" not in names
            and len(names) > 1}
    return "; ".join(f"{word}: {', '.join(names)}" for word, names in many.items())


def _vectors(parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | str:
    """The word's input vectors by embedding key, or why it has none oneword reads."""
    names = set(parts)
    outputs = {OUTPUT_PARTS[key] for key in OUTPUT_PARTS if OUTPUT_PARTS[key] in names}
    inputs = names - outputs
    if inputs == {SINGLE}:
        return {"*": parts[SINGLE]}
    if inputs == {ONETRAINER_SINGLE}:
        vectors = {"*": parts[ONETRAINER_SINGLE]}
    elif inputs == set(SDXL_KEYS):
        vectors = {key: parts[key] for key in SDXL_KEYS}
    else:
        return (f"a bundled embedding of parts {', '.join(sorted(names))}, which oneword does not read (it reads "
                "string_to_param.*, clip_l, or clip_l and clip_g)")
    for key, out in OUTPUT_PARTS.items():
        if key in inputs and out in outputs and not parts[key].any() and parts[out].any():
            return (f"a OneTrainer output embedding: its vectors ({out}) replace the text encoder's output, which "
                    f"A1111, diffusers and oneword do not support, and its input vectors ({key}) are all zero")
    return vectors


def read_bundle(tensors: dict[str, torch.Tensor],
                metadata: dict[str, str]) -> tuple[dict[str, Embedding], dict[str, str]]:
    """The bundled embeddings of a LoRA file's tensors by word, and why each other word is left out (another
    encoder's `t5`, an output embedding, shapes that make no embedding)."""
    from oneword.lora.network import header_step

    embeddings, problems = {}, {}
    step = header_step(metadata)
    for word, parts in bundled_words(tensors).items():
        vectors = _vectors(parts)
        if isinstance(vectors, str):
            problems[word] = vectors
            continue
        vectors = {key: (t.unsqueeze(0) if t.dim() == 1 else t).float() for key, t in vectors.items()}
        wrong = vector_problems(vectors)
        if wrong:
            problems[word] = f"a bundled embedding that is none: {'; '.join(wrong)}"
            continue
        embeddings[word] = Embedding(word, vectors, step=step)
    return embeddings, problems
