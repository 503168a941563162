"""`oneword compare`: the same prompt and seeds without the embedding and with each of several files."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from oneword.conditioning.tags import TagLibrary
from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import load_embedding_file
from oneword.generate.config import GenerateConfig
from oneword.generate.grid import labelled_grid
from oneword.generate.pnginfo import ImageParameters, format_parameters
from oneword.generate.samplers import get_sampler
from oneword.generate.txt2img import generate, native_size
from oneword.models.base import BaseModel
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


def compare_embeddings(
    model: BaseModel,
    config: GenerateConfig,
    files: list[Path],
    word: str,
    others: Mapping[str, Embedding] | None = None,
    libraries: Sequence[TagLibrary] = (),
) -> Comparison:
    """A grid: first column with nothing bound to `word`, then one column per file (rows: the batch's seeds).

    Every column uses the same seeds; `word` in the prompt stands for the embedding under test, each file in
    turn. `others` are further embeddings the prompt may use, the same in every column, and `libraries` the files
    its tags (`<hypernet:...>`) pick from.
    """
    size = native_size(model)
    config = replace(
        config,
        seed=config.seed if config.seed >= 0 else random.randrange(2**31),
        width=config.width or size,
        height=config.height or size,
    )
    base = {k: v for k, v in (others or {}).items() if k.lower() != word.lower()}
    plain = generate(model, config, base, *libraries)
    columns = [("no embedding", [g.image for g in plain])]
    loaded = [load_embedding_file(path) for path in files]
    labels, best = column_labels(files, [emb.step for emb in loaded])
    for label, emb in zip(labels, loaded):
        bound = {**base, word: replace(emb, name=word)}
        columns.append((label, [g.image for g in generate(model, config, bound, *libraries)]))
    parameters = ImageParameters(
        prompt=config.prompt, negative=config.negative, steps=config.steps,
        sampler=get_sampler(config.sampler).label, cfg=config.cfg, seed=config.seed, width=config.width,
        height=config.height, model_hash=model.short_hash, model_name=model.name,
        extra=(*plain[0].parameters.extra, ("Compared", "; ".join(p.name for p in files))),
    )
    outlined = None if best is None else 1 + [emb.step for emb in loaded].index(best)
    return Comparison(grid=labelled_grid(columns, outlined=outlined), config=config,
                      parameters=format_parameters(parameters), best_step=best)


def column_labels(files: list[Path], steps: list[int | None]) -> tuple[list[str], int | None]:
    """The files' column labels and the best step among them.

    The checkpoints of one run (LOG/embeddings/NAME-STEP.pt, one NAME, each file's own step) are labelled
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
