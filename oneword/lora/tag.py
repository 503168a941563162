"""The `lora` prompt tag, read as A1111's built-in Lora extension reads it (extra_networks_lora.py):
`<lora:NAME:WEIGHT>` applies NAME at WEIGHT to the text encoder(s) and the UNet, `<lora:NAME:TE:UNET>` gives the
two apart, `te=` and `unet=` name them; a UNet weight not given is the text-encoder weight, which defaults to 1.
A weight that is not a finite number, or beyond MAX_WEIGHT either way, is refused with the tag.

As in A1111, a LoRA that is not in the folder, or cannot be read, is left out with a note and the image is
still drawn; so are its layers that do not fit the model.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from oneword.conditioning.tags import Effect, Tag
from oneword.errors import OnewordError
from oneword.lora.apply import loras_applied
from oneword.lora.library import TAG_TYPE, Entry, LoraLibrary
from oneword.models.base import BaseModel

MAX_WEIGHT = 100.0
"""Largest weight (either sign) a `<lora:...>` tag may give: A1111's users stay within about -5..5, far beyond which
a LoRA only ever makes the model overflow and the image black."""


def wanted(tag: Tag) -> tuple[str, float, float]:
    """(name, text-encoder weight, UNet weight) of a `<lora:...>` tag; a OnewordError when malformed."""
    if not tag.name:
        raise OnewordError(f"prompt tag {tag.text}: no LoRA name")
    te = tag.weight(1, "te", 1.0, "text-encoder weight")
    unet = tag.weight(2, "unet", te, "UNet weight")
    if not (math.isfinite(te) and math.isfinite(unet)):
        raise OnewordError(f"prompt tag {tag.text}: the weights must be finite numbers")
    for weight in (te, unet):
        if abs(weight) > MAX_WEIGHT:
            raise OnewordError(f"prompt tag {tag.text}: the weight {weight:g} is outside "
                               f"-{MAX_WEIGHT:g}..{MAX_WEIGHT:g} (LoRAs are used within about -5..5)")
    return tag.name, te, unet


@dataclass
class LoraEffect(Effect):
    """The LoRAs a prompt asks for that could be read, with their weights, in prompt order."""

    active: list[tuple[str, Entry, float, float]]
    """(name as the prompt wrote it, the file read, text-encoder weight, UNet weight)."""
    library: LoraLibrary

    def text_encoder(self, model: BaseModel) -> AbstractContextManager:
        """The LoRAs' text-encoder layers at their text-encoder weights."""
        return self._applied(model, "te")

    def unet(self, model: BaseModel) -> AbstractContextManager:
        """The LoRAs' UNet layers at their UNet weights."""
        return self._applied(model, "unet")

    @contextlib.contextmanager
    def _applied(self, model: BaseModel, part: str) -> Iterator[None]:
        active = [(entry.lora, te, unet) for _, entry, te, unet in self.active]
        with loras_applied(model, active, (part,)) as notes:
            for note in notes:
                self.library.note(note)
            yield

    def embeddings(self) -> dict:
        """The embeddings bundled in the active LoRAs' files, by word (the first LoRA of the prompt that has a
        word gives it)."""
        words: dict = {}
        for _, entry, _, _ in self.active:
            for word, embedding in entry.lora.embeddings.items():
                words.setdefault(word, embedding)
        return words

    def infotext(self) -> tuple[tuple[str, str], ...]:
        """A1111's `Lora hashes: "NAME: HASH12, ..."`: each LoRA by the name the prompt gave (without `:` and `,`)
        and the first 12 hex digits of its hash."""
        pairs = {}
        for name, entry, _, _ in self.active:
            pairs.setdefault(name.replace(":", "").replace(",", ""), entry.hash[:12])
        hashes = ", ".join(f"{name}: {short}" for name, short in pairs.items() if short)
        return (("Lora hashes", hashes),) if hashes else ()


@dataclass(frozen=True)
class LoraTag:
    """`<lora:NAME:WEIGHT>`: NAME a file stem of the LoRA folder (A1111's `models/Lora`)."""

    name: str = TAG_TYPE
    option: str = "--lora-dir"
    folder: str = "lora"

    def scan(self, folder: Path, within: Path | None = None) -> LoraLibrary:
        """The LoRA files under `folder`, by stem."""
        return LoraLibrary.scan(folder, within=within)

    def check(self, tag: Tag) -> None:
        """A OnewordError for a tag without a name or with a weight that is not a finite number."""
        wanted(tag)

    def activate(self, tags: Sequence[Tag], library: LoraLibrary | None) -> LoraEffect:
        """The named LoRAs read from `library`; one that is missing or unusable is left out with a note (a
        OnewordError when no folder is given at all)."""
        asked = [wanted(tag) for tag in tags]
        if library is None:
            raise OnewordError(f"the prompt asks for LoRA {asked[0][0]!r} but no LoRA folder is given")
        active = []
        for name, te, unet in asked:
            entry = library.get(name)
            if entry is not None:
                active.append((name, entry, te, unet))
        return LoraEffect(active, library)
