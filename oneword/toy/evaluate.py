"""Measure what an embedding learned on the toy world: concept accuracy per checkpoint, and editability."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import load_embedding_file
from oneword.errors import OnewordError
from oneword.models.base import BaseModel
from oneword.models.device import vae_beside_unet
from oneword.toy.concepts import Concept, get_concept, write_concept_examples
from oneword.toy.judge import Judge, load_judge
from oneword.toy.report import (
    ReportConfig,
    agreement,
    baseline_prompt,
    concept_rate,
    draw,
    embedding_prompt,
)
from oneword.toy.world import COLOURS

if TYPE_CHECKING:
    from oneword.train.loop import Run


def colour_rate(model: BaseModel, judge: Judge, name: str, embedding: Embedding, rc: ReportConfig) -> float:
    """How often "a photo of a COLOUR NAME" is drawn in that colour, over every colour word (`rc.samples` in all)."""
    per_colour = -(-rc.samples // len(COLOURS))
    hits = total = 0
    for i, colour in enumerate(COLOURS):
        images = draw(model, f"a photo of a {colour} {name}", per_colour, rc, rc.seed + 7000 + 100 * i,
                      {name: embedding})
        hits += round(agreement(judge, images, "colour", colour) * len(images))
        total += len(images)
    return hits / total


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
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train as run_training

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
            "colour": colour_rate(model, judge, name, final, rc)}


@dataclass
class JudgeScorer:
    """The toy world's judge as a checkpoint scorer: how often the concept is drawn (accuracy) and, for object
    concepts, how often a colour word still gets its colour with the new word (editability)."""

    concept: Concept
    judge: Judge
    samples: int = 32
    seed: int = 0
    editability: bool = True
    key: str = "judge_accuracy"

    @classmethod
    def for_model(cls, model: BaseModel, concept: str, samples: int = 32, seed: int = 0) -> JudgeScorer:
        """The judge shipped beside a toy model (`--score judge:CONCEPT`)."""
        folder = model.source if model.source is not None and model.source.is_dir() else None
        if folder is None or not (folder / "judge.safetensors").is_file():
            raise OnewordError(f"--score judge:{concept}: the model {model.name} is not a toy model "
                               "(no judge beside it)")
        return cls(get_concept(concept), load_judge(folder / "judge.safetensors"), samples=samples, seed=seed)

    def score(self, run: Run, embedding: Embedding) -> dict[str, float]:
        """{"judge_accuracy": rate, "judge_editability": rate} in 0..1, from fixed seeds.

        For a hypernetwork run (applied to the model by the run) of a style: the style rate of "a COLOUR SHAPE"
        prompts (no special word), and how often their shape and colour are obeyed.
        """
        rc = ReportConfig(samples=self.samples, seed=self.seed)
        if not isinstance(embedding, Embedding):
            if self.concept.kind != "style":
                raise OnewordError(f"--score judge:{self.concept.name}: a hypernetwork is judged on a style concept")
            rates = style_rates(run.model, self.judge, self.concept.style, rc)
            return {self.key: rates["style"], "judge_shape": rates["shape"], "judge_colour": rates["colour"]}
        name = embedding.name
        prompt = embedding_prompt(self.concept.kind, name)
        with vae_beside_unet(run.model):
            scores = {self.key: concept_rate(run.model, self.judge, self.concept, prompt, rc, rc.seed,
                                             {name: embedding})[0]}
            if self.editability and self.concept.kind == "object":
                scores["judge_editability"] = colour_rate(run.model, self.judge, name, embedding, rc)
        return scores


def style_rates(model: BaseModel, judge: Judge, style: str, rc: ReportConfig, hypernetworks=()) -> dict[str, float]:
    """With `hypernetworks` ((Hypernetwork, strength) pairs) applied, prompts "a COLOUR SHAPE" over every named shape
    and colour (no special word): how often the judge reads `style`, and how often the shape and the colour asked for.
    """
    from oneword.hypernetworks.apply import hypernetworks_applied
    from oneword.toy.judge import to_tensor
    from oneword.toy.world import NAMED_SHAPES

    pairs = [(shape, colour) for shape in NAMED_SHAPES for colour in COLOURS]
    per_pair = -(-rc.samples // len(pairs))
    hits = {"style": 0, "shape": 0, "colour": 0}
    total = 0
    with vae_beside_unet(model), hypernetworks_applied(model.unet, list(hypernetworks)):
        for i, (shape, colour) in enumerate(pairs):
            images = draw(model, f"a {colour} {shape}", per_pair, rc, rc.seed + 100 * i)
            verdicts = judge.predict(to_tensor(images))
            hits["style"] += sum(v == style for v in verdicts["style"])
            hits["shape"] += sum(v == shape for v in verdicts["shape"])
            hits["colour"] += sum(v == colour for v in verdicts["colour"])
            total += len(images)
    return {key: value / total for key, value in hits.items()}
