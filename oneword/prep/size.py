"""The size pictures are prepared for: a base model's own (what training uses when given no --width), or A1111's
512 px when no model is named; and what to say when pictures are too small for it."""

from __future__ import annotations

DEFAULT_SIZE = 512
"""A1111's preprocess size (SD 1.x), used when no model is named."""
TOY_SIZE = 64
"""The bundled toy model's size, named in the advice for pictures too small for the default."""


def model_size(model: str) -> int:
    """The width (and height) `model` trains on when given no --width: its VAE's sample size, as training reads it."""
    from oneword import load_base

    return int(load_base(model).vae.config.sample_size)


def too_small_advice() -> str:
    """What to give when pictures are too small for the size asked: the model they are meant for, or a width."""
    return (f"for a model that trains on smaller pictures give --model (its size is used: --model toy makes "
            f"{TOY_SIZE}x{TOY_SIZE}) or --width")
