"""`oneword demo`: teach the bundled toy model one of its unnamed concepts, and let the judge say how well it learned.

What the tutorial's user should have seen on day one: the concept's pictures go in, an embedding comes out, and a
measurement (not a loss curve) says the new word now draws the concept, checkpoint by checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from oneword.train.events import Listener


@dataclass
class DemoConfig:
    """What the demo trains and how it measures."""

    concept: str = "star"
    """A toy concept (`oneword toy concepts` lists them)."""
    model: str = "toy"
    steps: int = 300
    save_every: int = 100
    log_dir: Path = Path("textual_inversion")
    samples: int = 32
    """Judged samples per prompt and checkpoint (fixed seeds)."""
    seed: int = 0
    train: dict = field(default_factory=dict)
    """Training settings that replace the demo's own (TrainConfig field names)."""


@dataclass
class DemoResult:
    """The judge's verdicts and where everything went."""

    concept: str
    before: float
    """Concept rate of the best prompt without the embedding."""
    after: float
    """Concept rate of "a photo of NAME" with the final embedding."""
    per_checkpoint: dict[int, float]
    log_folder: Path
    grid: Path
    embedding: Path


def run_demo(config: DemoConfig, on_event: Listener = lambda event: None, log=print) -> DemoResult:
    """Write the concept's examples, judge the baseline, train, judge every checkpoint, and draw a comparison grid."""
    from oneword.embeddings.formats import load_embedding_file
    from oneword.generate.grid import labelled_grid
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import get_concept, write_concept_examples
    from oneword.toy.report import ReportConfig, baseline_prompt, concept_rate, embedding_prompt
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train

    concept = get_concept(config.concept)
    name = f"{concept.name}-demo"
    root = Path(config.log_dir)
    data = root / "datasets" / concept.name
    write_concept_examples(concept, data)
    model, judge = load_toy(config.model)
    rc = ReportConfig(samples=config.samples, seed=config.seed)
    base_prompt = baseline_prompt(concept)
    before, base_images = concept_rate(model, judge, concept, base_prompt, rc, config.seed)
    log(f"before: {base_prompt!r} is judged a {concept.name} {before:.0%} of the time")

    settings = dict(
        name=name, data=data, model=config.model, init_text=concept.init_text,
        template="subject_filewords" if concept.kind == "object" else "style_filewords",
        max_steps=config.steps, save_every=config.save_every, preview_every=config.save_every,
        log_dir=root, embeddings_dir=root / "embeddings", seed=config.seed,
        preview_prompt=embedding_prompt(concept.kind, name), preview_cfg=rc.cfg, preview_sampler=rc.sampler,
    )
    finished = train(TrainConfig(**{**settings, **config.train}), model, on_event)

    prompt = embedding_prompt(concept.kind, name)
    rates, columns = {}, [("no embedding", _enlarged(base_images[:4]))]
    checkpoints = sorted(finished.log_folder.glob(f"embeddings/{name}-*.pt"), key=lambda p: int(p.stem.split("-")[-1]))
    for path in checkpoints:
        embedding = load_embedding_file(path)
        embedding.name = name
        step = embedding.step
        rates[step], images = concept_rate(model, judge, concept, prompt, rc, config.seed, {name: embedding})
        columns.append((f"step {step}: {rates[step]:.0%}", _enlarged(images[:4])))
    grid = finished.log_folder / "comparison.png"
    labelled_grid(columns, label_height=14).save(grid)
    after = rates[max(rates)] if rates else before
    return DemoResult(concept.name, before, after, rates, finished.log_folder, grid, finished.embedding_path)


def _enlarged(images: list, factor: int = 2) -> list:
    """Toy images (64 px) shown `factor` times larger, pixels kept sharp, so that the column labels fit."""
    from PIL import Image

    return [im.resize((im.width * factor, im.height * factor), Image.Resampling.NEAREST) for im in images]
