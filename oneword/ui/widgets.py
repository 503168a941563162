"""FieldSpecs as Gradio widgets, and the widgets' values back as a config's keyword arguments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from oneword.errors import OnewordError
from oneword.ui.fields import FieldSpec
from oneword.ui.labels import for_form
from oneword.ui.paths import Workspace


def info(spec: FieldSpec) -> str:
    """The help line under a widget: the field's help, the config's default (as the command line shows it) and the
    command line's spelling of the field."""
    shown = spec.default
    if isinstance(shown, bool):
        shown = "on" if shown else "off"
    elif isinstance(shown, Path):
        shown = shown.as_posix()
    default = "" if shown in (None, "", ".") else f" [default: {shown}]"
    return f"{spec.help}{default} ({spec.flag})".strip()


def widget(spec: FieldSpec, prefix: str, default: Any = None) -> gr.components.Component:
    """The widget for one field, with id `{prefix}-{field}` and the field's default as its value."""
    value = spec.default if default is None else default
    common = {"label": spec.label, "info": info(spec), "elem_id": f"{prefix}-{spec.name.replace('_', '-')}"}
    if spec.kind == "bool":
        return gr.Checkbox(value=bool(value), **common)
    if spec.kind in ("int", "float") and not spec.optional:
        return gr.Number(value=value, precision=0 if spec.kind == "int" else None, **common)
    if spec.kind == "choice":
        return gr.Dropdown(choices=list(spec.choices), value=value, allow_custom_value=True, **common)
    text = "" if value is None else (value.as_posix() if isinstance(value, Path) else str(value))
    return gr.Textbox(value=text, max_lines=1 if spec.kind == "path" else 3, **common)


def widgets(specs: Sequence[FieldSpec], prefix: str, defaults: dict[str, Any] | None = None
            ) -> dict[str, gr.components.Component]:
    """A widget per spec, by field name."""
    defaults = defaults or {}
    return {s.name: widget(s, prefix, defaults.get(s.name)) for s in specs}


def settings_from(specs: Sequence[FieldSpec], values: Sequence[Any], workspace: Workspace,
                  special: dict[str, Callable[[str, str], Any]] | None = None,
                  problems: list[str] | None = None) -> dict[str, Any]:
    """The values as config keyword arguments: numbers typed, empty optional fields None (the config's own choice),
    every path field through the workspace (`special` maps fields such as --model to their own workspace check).

    A bad value raises, unless `problems` is given: then its problem is added there and the field left out."""
    special = special or {}
    settings = {}
    for spec, value in zip(specs, values, strict=True):
        try:
            settings[spec.name] = _setting(spec, value, workspace, special)
        except OnewordError as error:
            if problems is None:
                raise
            problems.append(str(error))
    return settings


def _setting(spec: FieldSpec, value: Any, workspace: Workspace, special: dict[str, Callable[[str, str], Any]]) -> Any:
    """One field's value as its config keyword argument."""
    if spec.name in special:
        return special[spec.name](spec.flag, value)
    if spec.kind == "path":
        return workspace.resolve(spec.flag, value, optional=spec.optional)
    if spec.kind == "bool":
        return bool(value)
    if spec.kind in ("int", "float"):
        return number(spec, value)
    text = "" if value is None else str(value)
    return None if spec.optional and not text.strip() else text


def number(spec: FieldSpec, value: Any) -> int | float | None:
    """A number field's value; an optional one is a text field where empty means None."""
    if value is None or str(value).strip() == "":
        if spec.optional:
            return None
        raise OnewordError(f"{spec.flag} is empty: give a number")
    try:
        number = float(value)
    except ValueError:
        raise OnewordError(f"{spec.flag} must be a number, but is {value!r}") from None
    if spec.kind == "float":
        return number
    if not number.is_integer():
        raise OnewordError(f"{spec.flag} must be a whole number, but is {value!r}")
    return int(number)


def message(text: str, error: bool = False) -> str:
    """A line for a tab's message area, in the form's words (`tick Overwrite`, not `pass --overwrite`)."""
    return for_form(f"**error:** {text}" if error else text)
