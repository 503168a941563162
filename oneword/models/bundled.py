"""Where the model that ships inside the package lives: the toy world's model (`--model toy`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

TOY_NAME = "toy"
"""The `--model` name of the bundled toy model."""


def bundled_toy_path() -> Path:
    """Folder of the bundled toy model inside the package."""
    return Path(str(resources.files("oneword.data").joinpath("toy")))
