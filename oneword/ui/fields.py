"""What a form shows for a config dataclass, read from the dataclass itself: each field's type, default and help
(its docstring, the one the command line shows too), so the UI keeps no second copy of them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from oneword.fielddocs import field_docs
from oneword.ui import labels

__all__ = ["FieldSpec", "field_docs", "form_specs"]


@dataclass(frozen=True)
class FieldSpec:
    """One form field: the config field it fills and how to show it."""

    name: str
    kind: str
    """bool, int, float, text, path or choice."""
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    optional: bool = False
    """Empty means None (the library picks, e.g. the model's size)."""
    cli: str = ""
    """How the command line spells it, where that is not the rule's (`oneword check` takes --name, not NAME)."""

    @property
    def label(self) -> str:
        """What the form calls it: a human label from the one table (oneword.ui.labels)."""
        return labels.label(self.name)

    @property
    def flag(self) -> str:
        """The command line's spelling, which the help names and messages about the field use."""
        return self.cli or labels.flag(self.name)


def form_specs(cls: type, *, choices: dict[str, tuple[str, ...]] | None = None, paths: tuple[str, ...] = (),
               exclude: tuple[str, ...] = (), defaults: object | None = None) -> list[FieldSpec]:
    """A FieldSpec per field of `cls` (in its order) but `exclude`; `paths` are path fields, `choices` lists;
    `defaults` an instance whose values the form starts from, where the class fills some fields itself."""
    docs = field_docs(cls)
    choices = choices or {}
    specs = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        if defaults is not None:
            default = getattr(defaults, f.name)
        kind, optional = _kind(str(f.type))
        if f.name in paths:
            kind = "path"
        elif f.name in choices:
            kind = "choice"
        specs.append(FieldSpec(f.name, kind, default, docs.get(f.name, ""), tuple(choices.get(f.name, ())), optional))
    return specs


def _kind(annotation: str) -> tuple[str, bool]:
    optional = "None" in annotation
    base = annotation.replace("| None", "").strip()
    return {"bool": "bool", "int": "int", "float": "float", "Path": "path"}.get(base, "text"), optional
