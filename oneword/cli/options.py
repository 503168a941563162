"""Command-line options generated from a config dataclass: one per field, named after it, with the field's docstring
as help and the dataclass's default shown, so the command line, the TOML file and the web UI cannot drift apart."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from oneword.fielddocs import field_docs


def flag(field_name: str) -> str:
    """The option a field becomes: `max_steps` -> `--max-steps`."""
    return "--" + field_name.replace("_", "-")


def shown(value: Any) -> str | None:
    """A default as help text shows it (booleans on/off, paths as written); None where there is nothing to show."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Path):
        value = value.as_posix()
    return None if value in (None, "", ".") else str(value)


def field_options(cls: type, *, declared: dict[str, tuple[str, ...]], defaults: dict[str, str | None],
                  exclude: tuple[str, ...]) -> list[inspect.Parameter]:
    """A keyword parameter with a Typer option per field of `cls` but `exclude`, in the dataclass's order.

    Every option defaults to None, "not given", so that a value from a TOML file or the dataclass itself stays;
    `declared` gives a field its option names where the plain `--field-name` is not all (a short flag, a boolean's
    `--on/--off` pair); `defaults` the default as help shows it (else the dataclass's own, from `cls()`).
    """
    docs, hints, made = field_docs(cls), typing.get_type_hints(cls), cls()
    parameters = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        default = defaults[f.name] if f.name in defaults else shown(getattr(made, f.name))
        text = docs[f.name].replace("[", "\\[") + (f" \\[default: {default}]" if default else "")
        long = flag(f.name)
        names = declared.get(f.name, (f"{long}/--no-{long[2:]}" if hints[f.name] is bool else long,))
        option = typer.Option(None, *names, help=text, show_default=False)
        parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                            annotation=hints[f.name] | None))
    return parameters


def takes(parameters: list[inspect.Parameter]) -> Callable[[Callable], Callable]:
    """A decorator: the function (taking `**kwargs`) as Typer sees one with exactly these parameters."""

    def decorate(function: Callable) -> Callable:
        function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        function.__annotations__ = {p.name: p.annotation for p in parameters}
        return function

    return decorate
