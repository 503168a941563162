"""The registry of prompt tag types (A1111's "extra networks"): every prompt of oneword goes through it.

A type is registered once with `register`; `resolve` reads a prompt's tags, leaves them out of its text, and
gives each registered type present its tags, in prompt order, with its folder's files. Tags of a type nobody
registered are left out of the text too, as A1111 does, and `check_prompt` says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from oneword.conditioning.tags import Effect, Tag, TagLibrary, TagType, parse_tags
from oneword.hypernetworks.tag import HypernetTag
from oneword.lora.tag import LoraTag

if TYPE_CHECKING:
    from oneword.embeddings.embedding import Embedding
    from oneword.models.base import BaseModel

TAG_TYPES: dict[str, TagType] = {}
"""Registered types by their name."""


def register(tag_type: TagType) -> None:
    """Make `<NAME:...>` tags (NAME = `tag_type.name`) apply `tag_type` in every prompt."""
    TAG_TYPES[tag_type.name] = tag_type


def unregister(name: str) -> None:
    """Forget the tag type `name`; its tags are unknown again."""
    TAG_TYPES.pop(name, None)


register(HypernetTag())
register(LoraTag())


def check_prompt(prompt: str) -> list[str]:
    """A OnewordError for a malformed tag of a registered type; one note per tag of an unknown type."""
    notes = []
    for tag in parse_tags(prompt)[1]:
        tag_type = TAG_TYPES.get(tag.type)
        if tag_type is None:
            known = ", ".join(sorted(TAG_TYPES)) or "none"
            notes.append(f"prompt tag {tag.text}: unknown tag type {tag.type!r} (known: {known}); left out")
        else:
            tag_type.check(tag)
    return notes


def scan_folders(folders: Mapping[str, Path] | None = None, within: Path | None = None) -> list[TagLibrary]:
    """Every registered type's files: from `folders[type]` where given, else from the type's default folder."""
    folders = folders or {}
    return [t.scan(Path(folders.get(name, t.folder)), within) for name, t in TAG_TYPES.items()]


def folders_of(settings: object) -> dict[str, Path]:
    """Each registered type's folder as a settings object gives it: the attribute its option names
    (`--hypernetwork-dir` is `hypernetwork_dir`), for the types the object has one for."""
    folders = {}
    for name, tag_type in TAG_TYPES.items():
        value = getattr(settings, tag_type.option.removeprefix("--").replace("-", "_"), None)
        if value is not None:
            folders[name] = Path(value)
    return folders


def library_notes(libraries: Sequence[TagLibrary]) -> list[str]:
    """What the libraries' tags left out so far (a LoRA not found, layers that do not fit), each line once."""
    notes: list[str] = []
    for library in libraries:
        notes += [note for note in getattr(library, "notes", ()) if note not in notes]
    return notes


def resolve(prompt: str, libraries: Sequence[TagLibrary] = ()) -> tuple[str, list[Effect]]:
    """The prompt's text without its tags, and the effects of its tags, one per registered type it uses."""
    text, tags = parse_tags(prompt)
    by_type: dict[str, list[Tag]] = {}
    for tag in tags:
        by_type.setdefault(tag.type, []).append(tag)
    files = {library.tag: library for library in libraries}
    effects = [TAG_TYPES[name].activate(group, files.get(name)) for name, group in by_type.items()
               if name in TAG_TYPES]
    return text, effects


def with_tag_embeddings(embeddings: Mapping[str, Embedding] | None,
                        effects: Sequence[Effect]) -> dict[str, Embedding]:
    """`embeddings` and the words the effects bring (a LoRA's bundle); a word the embeddings already have, in any
    case, keeps theirs, as A1111 skips a bundled word its embeddings folder has loaded."""
    merged = dict(embeddings or {})
    known = {word.lower() for word in merged}
    for effect in effects:
        for word, embedding in effect.embeddings().items():
            if word.lower() not in known:
                merged[word] = embedding
                known.add(word.lower())
    return merged


def text_encoders_applied(effects: Sequence[Effect], model: BaseModel) -> contextlib.AbstractContextManager[None]:
    """Within the block, the text-encoder part of every effect is applied, in order."""
    return _all_applied(effects, lambda effect: effect.text_encoder(model))


def unets_applied(effects: Sequence[Effect], model: BaseModel) -> contextlib.AbstractContextManager[None]:
    """Within the block, the UNet part of every effect is applied, in order."""
    return _all_applied(effects, lambda effect: effect.unet(model))


@contextlib.contextmanager
def _all_applied(effects: Sequence[Effect],
                 part: Callable[[Effect], contextlib.AbstractContextManager]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for effect in effects:
            stack.enter_context(part(effect))
        yield
