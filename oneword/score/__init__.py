"""Quality scores of a run's checkpoints, behind one interface: the toy world's judge, CLIP, or the base model's own
features. Each scorer draws samples with the checkpoint (a ScoreContext) and measures them; higher is better."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from oneword.errors import OnewordError
from oneword.models.base import BaseModel
from oneword.score.context import ScoreContext


class Scorer(Protocol):
    """Scores one checkpoint of a run."""

    name: str
    """Prefix of its columns in the summary (`judge`, `clip`, `features`)."""
    key: str
    """The score, among those `score` returns, that picks the best checkpoint and feeds `--stop auto`."""

    def score(self, context: ScoreContext) -> dict[str, float]:
        """Named scores of the checkpoint `context.snapshot` (higher is better), e.g. {"features": 0.93}."""
        ...


WEIGHT_FREE = "none"
"""What `--score auto` uses without `--clip`: the fixed-batch validation loss alone, no scorer (docs/training.md
gives the measurement behind this choice)."""


def make_scorers(score: str, clip: Path | None, samples: int, seed: int, model: BaseModel) -> list[Scorer]:
    """The scorers `--score` asks for (`auto`: clip with `--clip`, else WEIGHT_FREE)."""
    kind, _, argument = score.partition(":")
    if kind == "auto":
        kind = "clip" if clip is not None else WEIGHT_FREE
    if kind == "none":
        return []
    if kind == "features":
        from oneword.score.features import FeatureScorer

        return [FeatureScorer(samples=samples, seed=seed)]
    if kind == "clip":
        from oneword.score.clip import ClipScorer

        return [ClipScorer.load(clip, samples=samples, seed=seed)]
    if kind == "judge":
        from oneword.toy.scorer import JudgeScorer

        return [JudgeScorer.for_model(model, argument, samples=samples, seed=seed)]
    raise OnewordError(f"--score: unknown scorer {score!r}")
