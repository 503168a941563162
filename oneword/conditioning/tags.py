"""A1111's prompt tags ("extra networks"): `<TYPE:NAME:ARG...>`, found and removed from the prompt text.

A1111 (modules/extra_networks.py) matches `<(\\w+):([^>]+)>`, splits the inside on `:`, reads an argument with
exactly one `=` as a named one (`te=0.5`) and every other as positional, and replaces each tag by nothing, of
whatever type, known or not. Here the inside may also be empty (`<hypernet:>`), so that a tag without a name is
reported instead of being encoded as text, and the arguments are stripped of surrounding spaces.

What a tag type does is declared by a `TagType` (oneword/extra_networks.py keeps the registry of them).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from oneword.errors import OnewordError

if TYPE_CHECKING:
    from oneword.embeddings.embedding import Embedding
    from oneword.models.base import BaseModel

TAG = re.compile(r"<(\w+):([^>]*)>")


@dataclass(frozen=True)
class Tag:
    """One `<TYPE:ARG1:ARG2...>` of a prompt."""

    type: str
    items: tuple[str, ...]
    """The arguments in order, stripped; the first is the NAME."""
    text: str
    """The tag as typed, for messages."""

    @property
    def name(self) -> str:
        """The first argument: which file of the type's folder."""
        return self.items[0]

    @property
    def positional(self) -> tuple[str, ...]:
        """The arguments that are not `key=value`, in order (the NAME first)."""
        return tuple(item for item in self.items if item.count("=") != 1)

    @property
    def named(self) -> dict[str, str]:
        """The `key=value` arguments (`te=0.5`, `unet=1`)."""
        return dict(tuple(part.strip() for part in item.split("=")) for item in self.items if item.count("=") == 1)

    def number(self, value: str, what: str = "strength") -> float:
        """`value` read as a number; a OnewordError naming the tag when it is not one."""
        try:
            return float(value)
        except ValueError:
            raise OnewordError(f"prompt tag {self.text}: the {what} {value!r} is not a number") from None

    def weight(self, index: int, key: str | None = None, default: float = 1.0, what: str = "strength") -> float:
        """The number given as `key=` if present, else the positional argument at `index`, else `default`
        (how A1111's LoRA reads `<lora:NAME:TE:UNET>` and `te=`/`unet=`)."""
        if key is not None and key in self.named:
            return self.number(self.named[key], what)
        positional = self.positional
        return self.number(positional[index], what) if index < len(positional) else default


def parse_tags(prompt: str) -> tuple[str, list[Tag]]:
    """The prompt with every tag replaced by nothing, and the tags in the order they appear."""
    tags = []

    def found(match: re.Match) -> str:
        items = tuple(item.strip() for item in match.group(2).split(":"))
        tags.append(Tag(match.group(1), items, match.group(0)))
        return ""

    return TAG.sub(found, prompt), tags


class Effect:
    """What the tags of one type in a prompt do to the model: a part applied to the text encoder while the
    prompts are encoded, and a part applied to the UNet while sampling. Both do nothing unless overridden."""

    def text_encoder(self, model: BaseModel) -> AbstractContextManager:
        """Within the block, the model's text encoder(s) carry this effect."""
        return contextlib.nullcontext()

    def unet(self, model: BaseModel) -> AbstractContextManager:
        """Within the block, the model's UNet carries this effect."""
        return contextlib.nullcontext()

    def infotext(self) -> tuple[tuple[str, str], ...]:
        """Fields this effect adds to an image's A1111 parameters text (`Lora hashes`), in order; none unless
        overridden."""
        return ()

    def embeddings(self) -> dict[str, Embedding]:
        """Words the prompt may use while the tags are in it (a LoRA's bundled embeddings), by word; none unless
        overridden."""
        return {}


class TagLibrary(Protocol):
    """The files of one tag type's folder."""

    tag: str
    """The type of tag these files serve (`hypernet`)."""

    def names(self) -> list[str]:
        """The names a tag can give, as a prompt would write them."""
        ...

    # A library may also have `notes`, a list of lines on what its tags left out (oneword/extra_networks.py's
    # `library_notes` gathers them for the commands to show).


class TagType(Protocol):
    """One type of prompt tag: its name, its folder and what its tags do."""

    name: str
    """The TYPE in `<TYPE:NAME:...>`."""
    option: str
    """The command-line option that names its folder (`--hypernetwork-dir`)."""
    folder: str
    """The folder's default path (`hypernetworks`)."""

    def scan(self, folder: Path, within: Path | None = None) -> TagLibrary:
        """The usable files under `folder`; with `within`, files whose links lead outside it are not used."""
        ...

    def check(self, tag: Tag) -> None:
        """A OnewordError when the tag is malformed (before any model or file is loaded)."""
        ...

    def activate(self, tags: Sequence[Tag], library: TagLibrary | None) -> Effect:
        """The effect of the prompt's tags of this type (in prompt order) with the files of `library`."""
        ...
