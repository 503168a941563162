"""`oneword compare`: the same prompt and seeds without the add-on and with each of several checkpoints of one kind:
embeddings, hypernetworks, LoRAs, or LoRAs with a bundled word (a pivotal run's)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image

from oneword.conditioning.tags import TagLibrary
from oneword.embeddings.embedding import Embedding
from oneword.generate.config import GenerateConfig
from oneword.generate.grid import labelled_grid
from oneword.generate.pnginfo import ImageParameters, format_parameters
from oneword.generate.samplers import get_sampler
from oneword.generate.txt2img import generate, native_size
from oneword.inspect.checkpoints import Checkpoints
from oneword.models.base import BaseModel
from oneword.snapshot_effect import CheckpointEffect
from oneword.train.best import summary_best_step


@dataclass
class Comparison:
    """The grid and the settings (seed and size resolved) that drew it."""

    grid: Image.Image
    config: GenerateConfig
    parameters: str
    """A1111 parameters text for the grid, with the compared files in a `Compared` field."""
    best_step: int | None = None
    """The step its run's `checkpoints.csv` marks best, when the files are one run's checkpoints and one is it."""
    notes: list[str] = field(default_factory=list)
    """What was left out while drawing (a LoRA's layers that do not fit the model), each line once."""


def _token_vectors(checkpoints: Checkpoints, snapshot: Any) -> dict[str, Embedding]:
    """The words a column's checkpoint brings to the prompt: its own, or its one word bound to the compared word."""
    vectors = snapshot.token_vectors()
    if checkpoints.word is None:
        return vectors
    return {checkpoints.word: replace(embedding, name=checkpoints.word) for embedding in vectors.values()}


def compare_checkpoints(
    model: BaseModel,
    config: GenerateConfig,
    checkpoints: Checkpoints,
    others: Mapping[str, Embedding] | None = None,
    libraries: Sequence[TagLibrary] = (),
) -> Comparison:
    """A grid: first column without the add-on, then one column per checkpoint (rows: the batch's seeds).

    Every column uses the same seeds. A checkpoint is drawn as its prompt tag would draw it at weight 1: an
    embedding's vectors stand for the compared word, a bundle's words for themselves (or for the compared word), a
    LoRA's layers and a hypernetwork's modules are applied to the model. `others` are further embeddings the prompt
    may use, the same in every column (a word a checkpoint brings is its own), and `libraries` the files its tags
    (`<hypernet:...>`) pick from.
    """
    size = native_size(model)
    config = replace(
        config,
        seed=config.seed if config.seed >= 0 else random.randrange(2**31),
        width=config.width or size,
        height=config.height or size,
    )
    columns_words = [_token_vectors(checkpoints, snapshot) for snapshot in checkpoints.snapshots]
    taken = {word.lower() for words in columns_words for word in words}
    base = {k: v for k, v in (others or {}).items() if k.lower() not in taken}
    plain = generate(model, config, base, *libraries)
    columns = [(checkpoints.without, [g.image for g in plain])]
    steps = [snapshot.step for snapshot in checkpoints.snapshots]
    labels, best = column_labels(checkpoints.files, steps)
    notes: list[str] = []
    for label, snapshot, words in zip(labels, checkpoints.snapshots, columns_words):
        effect = CheckpointEffect(snapshot)
        columns.append((label, [g.image for g in generate(model, config, {**base, **words}, *libraries,
                                                          applied=[effect])]))
        notes += [f"{label}: {note}" for note in effect.notes if f"{label}: {note}" not in notes]
    parameters = ImageParameters(
        prompt=config.prompt, negative=config.negative, steps=config.steps,
        sampler=get_sampler(config.sampler).label, cfg=config.cfg, seed=config.seed, width=config.width,
        height=config.height, model_hash=model.short_hash, model_name=model.name,
        extra=(*plain[0].parameters.extra, ("Compared", "; ".join(p.name for p in checkpoints.files))),
    )
    outlined = None if best is None else 1 + steps.index(best)
    return Comparison(grid=labelled_grid(columns, outlined=outlined), config=config,
                      parameters=format_parameters(parameters), best_step=best, notes=notes)


def column_labels(files: list[Path], steps: list[int | None]) -> tuple[list[str], int | None]:
    """The files' column labels and the best step among them.

    The checkpoints of one run (LOG/FOLDER/NAME-STEP.pt or .safetensors, one NAME, each file's own step) are labelled
    `step STEP`, the one its `checkpoints.csv` marks best `step STEP (best)`; other files by their name, with the
    step when the name does not end with it."""
    stems = [path.stem.rpartition("-") for path in files]
    one_run = (len({path.parent for path in files}) == 1 and len({name for name, _, _ in stems}) == 1
               and all(step is not None and tail == str(step) for (_, _, tail), step in zip(stems, steps))
               and len(set(steps)) == len(steps))
    if not one_run:
        return [path.stem if step is None or path.stem.endswith(f"-{step}") else f"{path.stem} ({step} steps)"
                for path, step in zip(files, steps)], None
    best = summary_best_step(files[0].parent.parent / "checkpoints.csv")
    best = best if best in steps else None
    return [f"step {step}" + (" (best)" if step == best else "") for step in steps], best
