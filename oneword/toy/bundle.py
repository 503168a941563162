"""The bundled toy model loaded with its judge (where it lives in the package: oneword/models/bundled.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from oneword.errors import OnewordError
from oneword.models.base import BaseModel
from oneword.models.bundled import TOY_NAME, bundled_toy_path
from oneword.models.device import place
from oneword.models.load import load_base
from oneword.toy.judge import Judge, load_judge

__all__ = ["TOY_NAME", "bundled_toy_path", "load_toy", "resolve_toy"]


def resolve_toy(name_or_path: str | Path) -> Path:
    """`toy` -> the bundled folder; anything else is taken as a toy model folder."""
    path = bundled_toy_path() if str(name_or_path) == TOY_NAME else Path(name_or_path)
    if not (path / "model_index.json").is_file() or not (path / "judge.safetensors").is_file():
        raise OnewordError(f"--model {name_or_path}: not a toy model folder (needs model_index.json and judge.safetensors)")
    return path


def load_toy(name_or_path: str | Path = TOY_NAME) -> tuple[BaseModel, Judge]:
    """The toy model (placed on the CPU in float32, like any model drawn there) and its judge."""
    path = resolve_toy(name_or_path)
    model = load_base(path)
    place(model, torch.device("cpu"))
    model.name = TOY_NAME if str(name_or_path) == TOY_NAME else path.name
    return model, load_judge(path / "judge.safetensors")
