"""oneword: teach a Stable Diffusion model a new word."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_base"]


def __getattr__(name: str):
    # Lazy so that `import oneword` stays cheap (torch and diffusers load only when a model is needed).
    if name == "load_base":
        from oneword.models.load import load_base

        return load_base
    raise AttributeError(name)
