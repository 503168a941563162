"""The toy world's judge as a checkpoint scorer (`--score judge:CONCEPT`), and the rates it measures."""

from __future__ import annotations

from dataclasses import dataclass

from oneword.embeddings.embedding import Embedding
from oneword.errors import OnewordError
from oneword.hypernetworks.apply import hypernetworks_applied
from oneword.models.base import BaseModel
from oneword.models.device import vae_beside_unet
from oneword.score.context import ScoreContext
from oneword.toy.concepts import Concept, get_concept
from oneword.toy.judge import Judge, load_judge, to_tensor
from oneword.toy.report import ReportConfig, agreement, concept_rate, draw, embedding_prompt
from oneword.toy.world import COLOURS, NAMED_SHAPES


def colour_rate(model: BaseModel, judge: Judge, name: str, embeddings: dict[str, Embedding], rc: ReportConfig) -> float:
    """How often "a photo of a COLOUR NAME" is drawn in that colour, over every colour word (`rc.samples` in all),
    with `embeddings` available to the prompt (none for a checkpoint that acts through the model's layers)."""
    per_colour = -(-rc.samples // len(COLOURS))
    hits = total = 0
    for i, colour in enumerate(COLOURS):
        images = draw(model, f"a photo of a {colour} {name}", per_colour, rc, rc.seed + 7000 + 100 * i,
                      embeddings)
        hits += round(agreement(judge, images, "colour", colour) * len(images))
        total += len(images)
    return hits / total


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

    def score(self, context: ScoreContext) -> dict[str, float]:
        """{"judge_accuracy": rate, "judge_editability": rate} in 0..1, from fixed seeds.

        For a checkpoint without a trigger word (a hypernetwork, applied to the model by the run) of a style: the
        style rate of "a COLOUR SHAPE" prompts (no special word), and how often their shape and colour are obeyed.
        """
        rc = ReportConfig(samples=self.samples, seed=self.seed)
        model, name = context.model, context.trigger_word
        if name is None:
            if self.concept.kind != "style":
                raise OnewordError(f"--score judge:{self.concept.name}: a hypernetwork is judged on a style concept")
            rates = style_rates(model, self.judge, self.concept.style, rc)
            return {self.key: rates["style"], "judge_shape": rates["shape"], "judge_colour": rates["colour"]}
        prompt = embedding_prompt(self.concept.kind, name)
        with vae_beside_unet(model):
            scores = {self.key: concept_rate(model, self.judge, self.concept, prompt, rc, rc.seed,
                                             context.embeddings)[0]}
            if self.editability and self.concept.kind == "object":
                scores["judge_editability"] = colour_rate(model, self.judge, name, context.embeddings, rc)
        return scores


def style_rates(model: BaseModel, judge: Judge, style: str, rc: ReportConfig, hypernetworks=()) -> dict[str, float]:
    """With `hypernetworks` ((Hypernetwork, strength) pairs) applied, prompts "a COLOUR SHAPE" over every named shape
    and colour (no special word): how often the judge reads `style`, and how often the shape and the colour asked for.
    """
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
