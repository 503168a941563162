"""`oneword toy report`: how often the judge agrees with the prompt, per word and per concept baseline, and how
visible and how meaningless a word no caption uses is."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from oneword.embeddings.embedding import Embedding
from oneword.generate.config import GenerateConfig
from oneword.generate.grid import labelled_grid
from oneword.generate.txt2img import generate
from oneword.models.base import BaseModel
from oneword.toy.concepts import CONCEPTS, Concept
from oneword.toy.judge import Judge, judge_accuracy, to_tensor
from oneword.toy.words import unseen_tokens, word_visibility
from oneword.toy.world import COLOURS, NAMED_SHAPES


@dataclass
class ReportConfig:
    """Sampling settings of the report (fixed seeds: the same model gives the same figures)."""

    samples: int = 64
    """Samples per word and per concept."""
    steps: int = 20
    cfg: float = 5.0
    sampler: str = "ddim"
    seed: int = 0
    tokens: int = 1000
    """Unseen tokens (words no caption uses) whose visibility to the text encoder is measured."""
    meaning_tokens: int = 100
    """Unseen tokens appended to "a photo of a COLOUR SHAPE" to measure how much they change the picture."""
    meaning_samples: int = 8
    """Samples per appended token, drawn with and without it."""


def draw(model: BaseModel, prompt: str, n: int, rc: ReportConfig, seed: int, embeddings=None) -> list:
    """`n` images of `prompt` from seeds `seed`, `seed + 1`, ... with the report's sampler settings."""
    config = GenerateConfig(prompt=prompt, seed=seed, steps=rc.steps, cfg=rc.cfg, sampler=rc.sampler, batch=n)
    return [g.image for g in generate(model, config, embeddings)]


def agreement(judge: Judge, images: list, factor: str, value: str) -> float:
    """Share of images the judge reads as `value` for `factor`."""
    verdicts = judge.predict(to_tensor(images))[factor]
    return sum(v == value for v in verdicts) / len(verdicts)


def word_rates(model: BaseModel, judge: Judge, rc: ReportConfig) -> tuple[dict[str, float], dict[str, list]]:
    """Rates for every shape and colour word, from prompts "a COLOUR SHAPE" over all pairs."""
    per_pair = -(-rc.samples // len(NAMED_SHAPES))  # each colour word sees every shape: ceil(samples / 3)
    images = {}
    for s_i, shape in enumerate(NAMED_SHAPES):
        for c_i, colour in enumerate(COLOURS):
            seed = rc.seed + 1000 * (s_i * len(COLOURS) + c_i)
            images[(shape, colour)] = draw(model, f"a {colour} {shape}", per_pair, rc, seed)
    rates = {}
    for shape in NAMED_SHAPES:
        pool = [im for (s, _), ims in images.items() if s == shape for im in ims][: rc.samples]
        rates[shape] = agreement(judge, pool, "shape", shape)
    for colour in COLOURS:
        pool = [im for (_, c), ims in images.items() if c == colour for im in ims][: rc.samples]
        rates[colour] = agreement(judge, pool, "colour", colour)
    columns = {f"a {c} {s}": ims[:4] for (s, c), ims in images.items()}
    return rates, columns


def concept_rate(
    model: BaseModel, judge: Judge, concept: Concept, prompt: str, rc: ReportConfig, seed: int,
    embeddings: Mapping[str, Embedding] | None = None,
) -> tuple[float, list]:
    """How often `rc.samples` images drawn from `prompt` (fixed seeds from `seed`) are judged as the concept."""
    images = draw(model, prompt, rc.samples, rc, seed, embeddings)
    if concept.kind == "object":
        return agreement(judge, images, "shape", concept.shape), images
    return agreement(judge, images, "style", concept.style), images


def embedding_prompt(kind: str, name: str) -> str:
    """The prompt that asks for a concept of `kind` through the embedding called `name`."""
    return f"a photo of {name}" if kind == "object" else f"a red circle, art by {name}"


def baseline_prompt(concept: Concept) -> str:
    """The best prompt without an embedding: the initialization word in the training templates' wording."""
    if concept.kind == "object":
        return f"a photo of an {concept.init_text}"
    return f"a {concept.init_text} of a red circle"


def concept_baselines(model: BaseModel, judge: Judge, rc: ReportConfig) -> tuple[dict[str, float], dict[str, list]]:
    """For each concept, how often the best prompt without an embedding is judged as the concept."""
    rates, columns = {}, {}
    for i, concept in enumerate(CONCEPTS.values()):
        prompt = baseline_prompt(concept)
        rates[concept.name], images = concept_rate(model, judge, concept, prompt, rc, rc.seed + 50000 + i * 1000)
        columns[f"{concept.name}: {prompt}"] = images[:4]
    return rates, columns


@dataclass
class MeaningTrial:
    """Images of one prompt with an unseen token appended and of the same prompt without it, from the same seeds."""

    token: str
    shape: str
    colour: str
    with_token: list
    without: list


def appended(prompt: str, token: str) -> str:
    """`prompt` with `token` appended as one more word (an empty token leaves it as it is)."""
    return f"{prompt} {token}" if token else prompt


def meaning_trials(model: BaseModel, tokens: list[str], rc: ReportConfig) -> list[MeaningTrial]:
    """For the i-th token, `rc.meaning_samples` images of "a photo of a COLOUR SHAPE TOKEN" and of the same prompt
    without the token, from the same seeds; the colour-shape pairs are taken in turn."""
    pairs = [(shape, colour) for shape in NAMED_SHAPES for colour in COLOURS]
    trials = []
    for i, token in enumerate(tokens):
        shape, colour = pairs[i % len(pairs)]
        prompt, n = f"a photo of a {colour} {shape}", rc.meaning_samples
        seed = rc.seed + 100000 + i * n
        with_token, without = draw(model, appended(prompt, token), n, rc, seed), draw(model, prompt, n, rc, seed)
        trials.append(MeaningTrial(token, shape, colour, with_token, without))
    return trials


def meaning_shift(judge: Judge, trials: list[MeaningTrial]) -> dict[str, dict[str, float]]:
    """Per factor (shape, colour): the judged agreement with the prompt's word with the tokens and without them,
    and the difference in points (with - without: negative when the tokens pull pictures away from the prompt)."""
    hits = {(factor, side): 0 for factor in ("shape", "colour") for side in ("with", "without")}
    total = 0
    for trial in trials:
        for side, images in (("with", trial.with_token), ("without", trial.without)):
            verdicts = judge.predict(to_tensor(images))
            hits["shape", side] += sum(v == trial.shape for v in verdicts["shape"])
            hits["colour", side] += sum(v == trial.colour for v in verdicts["colour"])
        total += len(trial.without)
    shift = {}
    for factor in ("shape", "colour"):
        with_rate, without_rate = hits[factor, "with"] / total, hits[factor, "without"] / total
        shift[factor] = {"with": with_rate, "without": without_rate, "points": 100 * (with_rate - without_rate)}
    return shift


def word_meaning(model: BaseModel, judge: Judge, rc: ReportConfig) -> dict:
    """How much appending one unseen token to "a photo of a COLOUR SHAPE" changes what the judge reads, over
    `rc.meaning_tokens` tokens (the first of the visibility draw) and `rc.meaning_samples` seeds each."""
    tokens = unseen_tokens(model.encoders[0].tokenizer, rc.meaning_tokens, rc.seed)
    return {"prompt": "a photo of a COLOUR SHAPE TOKEN", "tokens": rc.meaning_tokens,
            "samples_per_token": rc.meaning_samples, **meaning_shift(judge, meaning_trials(model, tokens, rc))}


def toy_report(model: BaseModel, judge: Judge, rc: ReportConfig, out: Path) -> dict:
    """Write `out/report.json` and `out/grid.png`; return the report."""
    words, word_columns = word_rates(model, judge, rc)
    baselines, concept_columns = concept_baselines(model, judge, rc)
    accuracy = judge_accuracy(judge)
    report = {
        "words": words,
        "concept_baselines": baselines,
        "word_visibility": word_visibility(model.encoders[0], rc.tokens, rc.seed),
        "word_meaning": word_meaning(model, judge, rc),
        "judge_accuracy": min(accuracy.values()),
        "judge_accuracy_per_factor": accuracy,
        "settings": {"samples": rc.samples, "steps": rc.steps, "cfg": rc.cfg, "sampler": rc.sampler, "seed": rc.seed,
                     "tokens": rc.tokens, "meaning_tokens": rc.meaning_tokens, "meaning_samples": rc.meaning_samples},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    grid = labelled_grid([(label, ims) for label, ims in {**word_columns, **concept_columns}.items()], label_height=14)
    grid.save(out / "grid.png")
    return report
