"""The `hypernet` prompt tag: `<hypernet:NAME:STRENGTH>` applies a hypernetwork of the hypernetworks folder to
the UNet's attention while sampling (A1111 changes nothing on the text encoder's side)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from oneword.conditioning.tags import Effect, Tag
from oneword.errors import OnewordError
from oneword.hypernetworks.apply import Active, hypernetworks_applied
from oneword.hypernetworks.library import TAG_TYPE, HypernetworkLibrary, wanted
from oneword.models.base import BaseModel


@dataclass
class HypernetEffect(Effect):
    """The hypernetworks a prompt asks for, with their strengths, in prompt order."""

    active: Active

    def unet(self, model: BaseModel) -> AbstractContextManager:
        """The hypernetworks' modules in every attention layer of the UNet."""
        return hypernetworks_applied(model.unet, self.active)


@dataclass(frozen=True)
class HypernetTag:
    """`<hypernet:NAME:STRENGTH>`: NAME a file stem of the hypernetworks folder, STRENGTH 1 if left out."""

    name: str = TAG_TYPE
    option: str = "--hypernetwork-dir"
    folder: str = "hypernetworks"

    def scan(self, folder: Path, within: Path | None = None) -> HypernetworkLibrary:
        """The hypernetwork files under `folder`, by stem."""
        return HypernetworkLibrary.scan(folder, within=within)

    def check(self, tag: Tag) -> None:
        """A OnewordError for a tag without a name or with a strength that is not a number."""
        wanted(tag)

    def activate(self, tags: Sequence[Tag], library: HypernetworkLibrary | None) -> HypernetEffect:
        """The named hypernetworks, loaded from `library`."""
        asked = [wanted(tag) for tag in tags]
        if library is None:
            raise OnewordError(f"the prompt asks for hypernetwork {asked[0][0]!r} but no hypernetworks folder is given")
        return HypernetEffect([(library.get(name), strength) for name, strength in asked])
