"""The files `compare` is given, read before any model loads: checkpoints of one kind (embeddings, hypernetworks,
LoRAs, or LoRAs with a bundled word), each as a snapshot (oneword/snapshot.py), and the prompt word they stand for.

A file that is no checkpoint (a base model, a pickle that would run code, anything unreadable), files of mixed kinds
and a word the kind cannot take are refused here, each with its reason, before the minutes a model takes to load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oneword.errors import OnewordError, gather
from oneword.inspect.describe import Inspection, inspect_file

KINDS = {"embedding": "an embedding", "hypernetwork": "a hypernetwork", "lora": "a LoRA",
         "pivotal": "a LoRA with a bundled word"}
"""The kinds of checkpoint compared, each as a message names one file of it."""
WITHOUT = {"embedding": "no embedding", "hypernetwork": "no hypernet", "lora": "no LoRA", "pivotal": "no LoRA"}
"""The label of the column drawn without the add-on (short words: a label wider than a picture widens its column)."""
LORA_FILES = ("LoRA", "LoCon", "LoHa", "LoKr", "PEFT LoRA")
"""What `oneword inspect` calls a LoRA file without bundled words."""
COUNTS = {2: "two", 3: "three", 4: "four"}


@dataclass
class Checkpoints:
    """Checkpoint files of one kind, read, with the word each stands for."""

    kind: str
    """A key of KINDS."""
    files: list[Path]
    snapshots: list[Any]
    """What each file holds: an Embedding, a Hypernetwork or a Lora."""
    word: str | None
    """The prompt word each file's vectors stand for (an embedding's; a bundle's one word when asked), or None to
    keep the words as the files name them (a bundle's) or for kinds that change the model rather than a word."""

    @property
    def without(self) -> str:
        """The label of the column drawn without them."""
        return WITHOUT[self.kind]


def file_kind(found: Inspection) -> str | None:
    """The KINDS key of an inspected file, None when it is no checkpoint."""
    if found.what in ("embedding", "hypernetwork"):
        return found.what
    if found.what.startswith("bundle"):
        return "pivotal"
    return "lora" if found.what in LORA_FILES else None


def read_checkpoints(files: Sequence[Path], word: str | None, default_word: str | None = None) -> Checkpoints:
    """The files as checkpoints of one kind; a OnewordError naming every file that is no checkpoint, or the kinds
    when they are mixed, or a word the kind cannot take. Embeddings need a word: `word`, else `default_word`."""
    found, problems = [], []
    for path in map(Path, files):
        try:
            inspection = inspect_file(path)
        except OnewordError as error:
            problems.append(f"{path}: not a checkpoint to compare: {str(error).removeprefix(f'{path}: ')}")
            continue
        if inspection.what == "base model":
            problems.append(f"{path}: a base model, not a checkpoint to compare (an embedding, hypernetwork or LoRA)")
        elif file_kind(inspection) is None:
            reason = inspection.problem if inspection.safe else inspection.safety
            problems.append(f"{path}: not a checkpoint to compare: {reason}")
        else:
            found.append(inspection)
    gather(problems)
    if not found:
        raise OnewordError("compare needs at least one checkpoint file")
    first_of: dict[str, Path] = {}
    for inspection in found:
        first_of.setdefault(file_kind(inspection), inspection.path)
    if len(first_of) > 1:
        named = [f"{path} is {KINDS[kind]}" if i == 0 else f"{path} {KINDS[kind]}"
                 for i, (kind, path) in enumerate(first_of.items())]
        raise OnewordError(f"compare takes checkpoints of one kind; these are of {COUNTS[len(first_of)]}: "
                           f"{', '.join(named)}")
    kind = next(iter(first_of))
    snapshots = [inspection.content for inspection in found]
    paths = [inspection.path for inspection in found]
    return Checkpoints(kind, paths, snapshots, _word(kind, snapshots, paths, word, default_word))


def _word(kind: str, snapshots: list[Any], files: list[Path], word: str | None, default: str | None) -> str | None:
    word = word.strip() if word else None
    if kind == "embedding":
        word = word or default
        if not word:
            raise OnewordError("--word: embeddings need the word of the prompt that each file stands for")
    elif kind == "pivotal":
        several = next(((path, s) for path, s in zip(files, snapshots) if len(s.embeddings) != 1), None)
        if word and several is not None:
            path, snapshot = several
            raise OnewordError(f"--word: {path} bundles {len(snapshot.embeddings)} words "
                               f"({', '.join(snapshot.embeddings)}); leave --word out to use them as they are")
    elif word:
        raise OnewordError(f"--word: {KINDS[kind]} changes the model, not a word of the prompt; leave --word out (a "
                           "word the prompt holds stays as it is)")
    return word
