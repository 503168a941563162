"""The settings of a txt2img run, filled alike by the CLI, a TOML file or a UI."""

from __future__ import annotations

from dataclasses import dataclass

from oneword.errors import gather
from oneword.generate.samplers import SAMPLERS

MAX_SEED = 2**64 - 1
"""Largest seed a PyTorch generator takes; image i of a batch uses seed + i, which must not pass it."""


@dataclass
class GenerateConfig:
    """What to draw and how."""

    prompt: str = ""
    """The prompt, in A1111 syntax: `(word:1.3)`, `[word]`, `BREAK`, embedding names by file stem."""
    negative: str = ""
    """The negative prompt, same syntax."""
    seed: int = -1
    """Seed of the first image; image i of a batch uses seed + i. -1 picks a random seed (printed and saved)."""
    steps: int = 20
    """Sampling steps."""
    cfg: float = 7.0
    """Classifier-free guidance scale."""
    sampler: str = "euler_a"
    """Sampler name: euler_a, euler, ddim, dpmpp_2m, dpmpp_2m_karras."""
    width: int | None = None
    """Image width in pixels, a multiple of 8; None uses the model's native size."""
    height: int | None = None
    """Image height in pixels, a multiple of 8; None uses the model's native size."""
    batch: int = 1
    """Images to draw."""

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 1:
            problems.append(f"--steps must be at least 1, but is {self.steps}")
        if self.batch < 1:
            problems.append(f"--batch must be at least 1, but is {self.batch}")
        if self.cfg < 0:
            problems.append(f"--cfg must not be negative, but is {self.cfg}")
        if self.seed < -1 or self.seed + max(self.batch, 1) - 1 > MAX_SEED:
            last = "" if self.batch <= 1 else f" less {self.batch - 1} (image i of the batch uses seed + i)"
            problems.append(f"--seed must be -1 (random) or between 0 and {MAX_SEED}{last}, but is {self.seed}")
        for option, value in (("--width", self.width), ("--height", self.height)):
            if value is not None and (value < 8 or value % 8):
                problems.append(f"{option} must be a positive multiple of 8, but is {value}")
        if self.sampler not in SAMPLERS:
            problems.append(f"--sampler: unknown sampler {self.sampler!r}; known: {', '.join(SAMPLERS)}")
        gather(problems)
