"""The CLIP BPE tokenizer every Stable Diffusion kind uses, built from files inside the package."""

from __future__ import annotations

from functools import cache
from importlib import resources

from transformers import CLIPTokenizer


@cache
def _tokenizer(pad_token: str) -> CLIPTokenizer:
    folder = resources.files("oneword.data.tokenizer")
    return CLIPTokenizer(
        vocab=str(folder.joinpath("vocab.json")),
        merges=str(folder.joinpath("merges.txt")),
        pad_token=pad_token,
        model_max_length=77,
    )


def clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """The CLIP tokenizer with the given pad token (`<|endoftext|>` for SD 1.x, `!` for SD 2.x and SDXL's second).

    Shared and cached: callers must not add tokens to it.
    """
    return _tokenizer(pad_token)
