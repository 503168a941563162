"""The toy's vocabulary: the words its captions use, tokens they never use, and how visible a word is to the text
encoder.

The toy text encoder only ever saw caption words. Every other CLIP token keeps its initial embedding, whereas in
Stable Diffusion every token was trained: a rare trigger word there is visible to the UNet though it means little.
`visibility` measures the first half of that, `unseen_tokens` draws the words it is measured on.
"""

from __future__ import annotations

import random
import re
import statistics

import torch

from oneword.errors import OnewordError
from oneword.models.base import TextEncoder
from oneword.toy.concepts import CONCEPTS
from oneword.toy.world import BACKGROUNDS, COLOURS, NAMED_SHAPES, POSITIONS, PREFIXES, SHAPES, SIZES, STYLES

DESCRIBING_WORDS = tuple(dict.fromkeys([
    *NAMED_SHAPES, "object", *COLOURS, *BACKGROUNDS, *SIZES, *(w for p in POSITIONS for w in p.split()),
]))
"""Caption words that tell scenes apart: shape and colour words, "object", background, size and position words."""
TEMPLATE_WORDS = tuple(dict.fromkeys([*(w for p in PREFIXES for w in p.split()), "a", "an", "on", "background"]))
"""Caption words every kind of scene gets ("a photo of", "on a ... background"): they tell nothing apart."""
CAPTION_WORDS = DESCRIBING_WORDS + TEMPLATE_WORDS
"""Every word a pre-training caption can hold (`oneword.toy.world.caption`)."""
WORLD_NAMES = tuple(dict.fromkeys([*SHAPES, *STYLES, *CONCEPTS, *(c.init_text for c in CONCEPTS.values())]))
"""Names of the world's shapes, styles and concepts: never drawn as unseen tokens, even those no caption uses
("star"), so that a later model which learns them cannot turn a random token into a concept."""
VISIBILITY_PREFIX = "a photo of"

_WORD = re.compile(r"[a-z]+")


def unseen_tokens(tokenizer, n: int, seed: int = 0) -> list[str]:
    """`n` CLIP tokens no caption uses, drawn at random with `seed`: whole-word tokens of the letters a-z that the
    tokenizer reads back as that one token, none a caption word or a name of the world.

    The order is fixed by the seed alone, so the first `k` of a larger draw are the draw of `k`. The pre-training's
    private tokens (rows past the vocabulary, dropped from the shipped model) are never among them: only entries of
    the tokenizer's vocabulary are drawn.
    """
    vocab = tokenizer.get_vocab()
    known = (*CAPTION_WORDS, *WORLD_NAMES)
    excluded = {i for word in known for i in tokenizer(word, add_special_tokens=False).input_ids}
    words = sorted(t[:-4] for t, i in vocab.items()
                   if t.endswith("</w>") and _WORD.fullmatch(t[:-4]) and i not in excluded)
    random.Random(f"unseen-tokens-{seed}").shuffle(words)
    drawn = []
    for word in words:
        if len(drawn) == n:
            break
        if tokenizer(word, add_special_tokens=False).input_ids == [vocab[f"{word}</w>"]]:
            drawn.append(word)
    if len(drawn) < n:
        raise OnewordError(f"{n} unseen tokens asked for, but the vocabulary holds only {len(drawn)}")
    return drawn


@torch.no_grad()
def visibility(encoder: TextEncoder, words: list[str], batch: int = 250) -> list[float]:
    """Per word, 1 - cosine between the text encoder's output for "a photo of WORD" and for "a photo of".

    The output is the last hidden state at all 77 positions (padded as the tokenizer pads), flattened: the whole
    sequence the UNet's cross-attention reads. About 0 for a word the encoder ignores.
    """

    def encode(prompts: list[str]) -> torch.Tensor:
        ids = encoder.tokenizer(prompts, padding="max_length", max_length=encoder.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids
        return encoder.model(ids).last_hidden_state.flatten(1).float()  # (B, 77 * width)

    reference = encode([VISIBILITY_PREFIX])  # (1, 77 * width)
    distances = []
    for start in range(0, len(words), batch):
        outputs = encode([f"{VISIBILITY_PREFIX} {w}" for w in words[start : start + batch]])
        distances += (1 - torch.nn.functional.cosine_similarity(outputs, reference, dim=1)).tolist()
    return distances


def word_visibility(encoder: TextEncoder, n_tokens: int, seed: int = 0) -> dict:
    """The visibility medians of `n_tokens` unseen tokens and of the describing caption words, and their ratio
    (unseen / caption: near 0 when the encoder ignores words it never saw, about 1 when every word is visible)."""
    tokens = unseen_tokens(encoder.tokenizer, n_tokens, seed)
    unseen = statistics.median(visibility(encoder, tokens))
    caption = dict(zip(CAPTION_WORDS, visibility(encoder, list(CAPTION_WORDS))))
    describing = statistics.median(caption[w] for w in DESCRIBING_WORDS)
    return {
        "measure": f'1 - cosine of the text encoder\'s last hidden state (77 positions), "{VISIBILITY_PREFIX} WORD" '
                   f'against "{VISIBILITY_PREFIX}"',
        "unseen_tokens": n_tokens,
        "unseen_median": unseen,
        "caption_median": describing,
        "ratio": unseen / describing,
        "caption_words": caption,
    }
