"""Embeddings bundled in a LoRA file, as A1111 reads them (extensions-builtin/Lora/networks.py) and OneTrainer and
oneword write them: `bundle_emb.WORD.string_to_param.*` ([n, dim], SD 1.x/2.x) or `bundle_emb.WORD.clip_l` and
`bundle_emb.WORD.clip_g` (SDXL). A1111 makes an embedding of each WORD while `<lora:NAME:...>` is in the prompt,
unless the embeddings folder has that word already; ComfyUI's and diffusers' LoRA loaders skip them.
"""

from __future__ import annotations

import torch

from oneword.embeddings.embedding import SDXL_KEYS, Embedding, vector_problems

PREFIX = "bundle_emb."
SINGLE = "string_to_param.*"
"""A1111's key of the vectors of a single-encoder embedding, after `bundle_emb.WORD.`."""


def bundle_tensors(embeddings: dict[str, Embedding]) -> dict[str, torch.Tensor]:
    """The file keys of bundled embeddings: the vectors as float32, as embedding files keep them."""
    tensors = {}
    for word, embedding in embeddings.items():
        for key, vectors in embedding.vectors.items():
            part = SINGLE if key == "*" else key
            tensors[f"{PREFIX}{word}.{part}"] = vectors.detach().to("cpu", torch.float32).contiguous()
    return tensors


def bundled_words(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """WORD -> {part after the word: tensor} for every `bundle_emb.WORD.PART` key."""
    words: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        if key.startswith(PREFIX) and key.count(".") > 1:
            word, part = key[len(PREFIX):].split(".", 1)
            words.setdefault(word, {})[part] = tensor
    return words


def read_bundle(tensors: dict[str, torch.Tensor],
                metadata: dict[str, str]) -> tuple[dict[str, Embedding], dict[str, str]]:
    """The bundled embeddings of a LoRA file's tensors by word, and why each other word is left out (OneTrainer's
    output vectors `clip_l_out`, other encoders' `t5`, shapes that make no embedding)."""
    embeddings, problems = {}, {}
    steps = metadata.get("ss_steps", "")
    for word, parts in bundled_words(tensors).items():
        if set(parts) == {SINGLE}:
            vectors = {"*": parts[SINGLE]}
        elif set(parts) == set(SDXL_KEYS):
            vectors = {key: parts[key] for key in SDXL_KEYS}
        else:
            problems[word] = (f"a bundled embedding of parts {', '.join(sorted(parts))}, which oneword does not read "
                              "(it reads string_to_param.*, or clip_l and clip_g)")
            continue
        vectors = {key: (t.unsqueeze(0) if t.dim() == 1 else t).float() for key, t in vectors.items()}
        wrong = vector_problems(vectors)
        if wrong:
            problems[word] = f"a bundled embedding that is none: {'; '.join(wrong)}"
            continue
        embeddings[word] = Embedding(word, vectors, step=int(steps) if steps.isdigit() else None)
    return embeddings, problems
