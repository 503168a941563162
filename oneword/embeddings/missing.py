"""Prompt words that look like an embedding that is not there, each named in one note (the image is still drawn,
with the word as plain text, as A1111 draws it).

The rule:
1. a word that names an embedding file the folder skipped (its stem, or the name stored inside it) and that no
   loaded embedding answers: the note gives the file and why it was skipped (empty, unreadable, does not fit the
   model...);
2. a word of 4 or more letters that no embedding answers, that the text encoder does not know as one word (its
   tokenizer splits it), and that is one edit (a letter missing, added or changed, or two neighbours swapped)
   from a loaded embedding's word: the note asks whether that word was meant (`zqstr` for `zqstar`). Words the
   encoder knows whole (`stars` beside an embedding `star`) are ordinary words and get no note;
3. a word that names a training run (its log folder) while no loaded embedding answers it: the run's embedding
   is not in this folder (deleted, moved, or written to another embeddings folder).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from oneword.conditioning.tags import parse_tags
from oneword.conditioning.tokens import token_ids
from oneword.embeddings.library import EmbeddingLibrary

WORD = re.compile(r"[^\W_][\w.\-]*")
"""A prompt word as an embedding's file stem may spell it: letters, digits, `_`, `-` and `.` inside."""
CLOSE_FROM = 4
"""Shortest word checked for a near miss: shorter ones are one edit from too many names."""


def prompt_words(prompts: Sequence[str]) -> list[str]:
    """The words of the prompts (their prompt tags and weights left out), each once, in order."""
    words: dict[str, None] = {}
    for prompt in prompts:
        text = parse_tags(prompt)[0]
        for word in WORD.findall(text):
            words.setdefault(word.rstrip(".-"), None)
    return list(words)


def one_edit(a: str, b: str) -> bool:
    """Whether `a` and `b` differ by exactly one letter missing, added or changed, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diffs) == 1 or (len(diffs) == 2 and diffs[1] == diffs[0] + 1
                                   and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]])
    short, long = sorted((a, b), key=len)
    i = next((k for k, (x, y) in enumerate(zip(short, long)) if x != y), len(short))
    return short[i:] == long[i + 1:]


def missing_embedding_notes(prompts: Sequence[str], library: EmbeddingLibrary | None, tokenizer,
                            shown: Callable[[Path], str] = str, runs: Mapping[str, str] | None = None) -> list[str]:
    """One note per prompt word that looks like a missing embedding (the rule above); `tokenizer` is the model's
    first text encoder's, `shown` how a file is named to the user, `runs` the training runs by name (their log
    folders as the user sees them). Without a library (no embeddings folder) only the runs are looked at."""
    if library is None:
        library = EmbeddingLibrary({}, [])
    trained = {name.lower(): where for name, where in (runs or {}).items()}
    loaded = {name.lower(): name for name in library.loaded}
    skipped = {}
    for entry in library.entries:
        if entry.reason is None:
            continue
        for name in (entry.path.stem, entry.embedding.name if entry.embedding else None):
            if name and name.lower() not in loaded:
                skipped.setdefault(name.lower(), entry)
    notes = []
    for word in prompt_words(prompts):
        key = word.lower()
        if key in loaded:
            continue
        if key in trained and key not in skipped:
            notes.append(f"the prompt's word {word!r} names the training run {trained[key]}, but no embedding of "
                         "that name is in the embeddings folder")
            continue
        if key in skipped:
            entry = skipped[key]
            notes.append(f"the prompt's word {word!r} is no embedding here: {shown(entry.path)} was skipped "
                         f"({entry.reason})")
            continue
        if len(key) < CLOSE_FROM or len(token_ids(tokenizer, key)) < 2:
            continue
        near = sorted(name for lower, name in loaded.items() if one_edit(key, lower))
        if near:
            notes.append(f"the prompt's word {word!r} is no embedding; did you mean {' or '.join(map(repr, near))}?")
    return notes
