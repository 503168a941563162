"""How a run's checkpoints are scored: what the scorers see of the run (a ScoreContext), and their scores."""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING

from oneword.score.context import ScoreContext
from oneword.train.templates import fill_template
from oneword.train.trainable import Snapshot

if TYPE_CHECKING:
    from oneword.train.loop import Run


def training_prompt(lines: tuple[str, ...], name: str, captions: tuple[str, ...], k: int) -> str:
    """The k-th prompt as a run trains: template line k and caption k (each in turn), with a fixed seed per k."""
    return fill_template(lines[k % len(lines)], name, captions[k % len(captions)], random.Random(k))


def score_context(run: Run, snapshot: Snapshot) -> ScoreContext:
    """What the scorers see of `run` at the checkpoint `snapshot`."""
    images = run.dataset.images
    captions = tuple(image.caption for image in images)
    return ScoreContext(
        model=run.model, snapshot=snapshot, embeddings=snapshot.token_vectors(),
        prompt=functools.partial(training_prompt, tuple(run.lines), run.trainable.name, captions),
        template=str(run.config.template), preview=run.preview, captions=captions,
        image_paths=tuple(image.path for image in images), latents=tuple(run.latents.mean),
        alphas_cumprod=run.alphas_cumprod, condition=functools.partial(run.trainable.conditioning, run.model),
    )


def checkpoint_scores(run: Run, step: int) -> dict[str, float]:
    """Every scorer's scores of the weights now, as the checkpoint of `step` (dropout off while scoring)."""
    scores: dict[str, float] = {}
    if not run.scorers:
        return scores
    context = score_context(run, run.trainable.snapshot(step))
    with run.trainable.sampling():
        for scorer in run.scorers:
            scores.update(scorer.score(context))
    return scores
