"""Measure what an embedding learned on the toy world: concept accuracy per checkpoint, and editability."""

from __future__ import annotations

from pathlib import Path

from oneword.embeddings.formats import load_embedding_file
from oneword.models.base import BaseModel
from oneword.toy.concepts import Concept, write_concept_examples
from oneword.toy.judge import Judge
from oneword.toy.report import ReportConfig, baseline_prompt, concept_rate
from oneword.toy.scorer import colour_rate
from oneword.train.config import TrainConfig
from oneword.train.loop import train as run_training


def checkpoint_rates(
    model: BaseModel, judge: Judge, concept: Concept, name: str, checkpoints: list[Path], rc: ReportConfig
) -> dict[int, float]:
    """Step -> concept rate of "a photo of NAME" for each checkpoint file (same seeds for all)."""
    rates = {}
    for path in checkpoints:
        embedding = load_embedding_file(path)
        embedding.name = name
        rates[embedding.step], _ = concept_rate(model, judge, concept, f"a photo of {name}", rc, rc.seed,
                                                {name: embedding})
    return rates


def evaluate_concept(
    model: BaseModel, judge: Judge, concept: Concept, folder: Path, *, steps: int = 500, samples: int = 64,
    every: int = 100, seed: int = 0, train: dict | None = None,
) -> dict:
    """Train an embedding of an object concept with the trainer's defaults and judge it.

    Returns {"baseline", "per_step" {step: rate}, "final", "colour"}: rates in 0..1.
    """
    if concept.kind != "object":
        raise ValueError(f"{concept.name} is a {concept.kind} concept; evaluate_concept judges object concepts")
    rc = ReportConfig(samples=samples, seed=seed)
    baseline, _ = concept_rate(model, judge, concept, baseline_prompt(concept), rc, seed)
    name = f"{concept.name}-x"
    data = write_concept_examples(concept, folder / "data")[0].parent
    config = TrainConfig(name=name, data=data, model=str(model.source or model.name), init_text=concept.init_text,
                         max_steps=steps, save_every=every, preview_every=0, log_dir=folder / "log",
                         embeddings_dir=folder / "embeddings", seed=seed, **(train or {}))
    finished = run_training(config, model)
    checkpoints = sorted((finished.log_folder / "embeddings").glob(f"{name}-*.pt"),
                         key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    per_step = checkpoint_rates(model, judge, concept, name, checkpoints, rc)
    final = load_embedding_file(finished.embedding_path)
    final.name = name
    return {"baseline": baseline, "per_step": per_step, "final": per_step[max(per_step)],
            "colour": colour_rate(model, judge, name, {name: final}, rc)}
