"""What a form shows for a config dataclass, read from the dataclass itself: each field's type, default and help
(its docstring, else the command line's help for the same option), so the UI keeps no second copy of them."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_CLI_DEFAULT = re.compile(r"\s*\\?\[default:[^\]]*\]\.?\s*$")


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

    @property
    def label(self) -> str:
        """What the form calls it: the command line's option name."""
        return "--" + self.name.replace("_", "-")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass, from its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def cli_help(command: Callable) -> dict[str, str]:
    """The help text of each option of a Typer command, without its `[default: ...]` part."""
    helps = {}
    for name, parameter in inspect.signature(command).parameters.items():
        text = getattr(parameter.default, "help", None)
        if text:
            helps[name] = _CLI_DEFAULT.sub("", text.replace("\\[", "[")).strip()
    return helps


def form_specs(cls: type, *, choices: dict[str, tuple[str, ...]] | None = None, paths: tuple[str, ...] = (),
               cli: Callable | None = None, exclude: tuple[str, ...] = ()) -> list[FieldSpec]:
    """A FieldSpec per field of `cls` (in its order) but `exclude`; `paths` are path fields, `choices` lists."""
    docs, helps = field_docs(cls), cli_help(cli) if cli else {}
    choices = choices or {}
    specs = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        kind, optional = _kind(str(f.type))
        if f.name in paths:
            kind = "path"
        elif f.name in choices:
            kind = "choice"
        help_text = docs.get(f.name) or helps.get(f.name, "")
        specs.append(FieldSpec(f.name, kind, default, help_text, tuple(choices.get(f.name, ())), optional))
    return specs


def _kind(annotation: str) -> tuple[str, bool]:
    optional = "None" in annotation
    base = annotation.replace("| None", "").strip()
    return {"bool": "bool", "int": "int", "float": "float", "Path": "path"}.get(base, "text"), optional
