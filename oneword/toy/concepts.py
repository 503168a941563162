"""Concepts no caption word names: what embeddings learn on the toy world."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from oneword.errors import OnewordError
from oneword.toy.world import (
    BACKGROUNDS,
    COLOURS,
    POSITIONS,
    SIZES,
    Scene,
    caption,
    render,
)


@dataclass(frozen=True)
class Concept:
    """A thing or a look that the base model can draw but no word selects."""

    name: str
    kind: str
    """`object` (a shape, for the subject templates) or `style` (a look, for the style templates)."""
    init_text: str
    """What a user would initialise the embedding with: the generic word for it."""
    description: str
    shape: str | None = None
    """For object concepts: the hidden shape the judge must read."""
    style: str | None = None
    """For style concepts: the style the judge must read."""

    def example_scene(self, rng: random.Random) -> Scene:
        """A random scene showing the concept."""
        size = rng.choice(tuple(SIZES))
        scene = Scene(
            shape=self.shape or rng.choice(("circle", "square", "triangle")),
            colour=rng.choice(tuple(COLOURS)),
            background=rng.choice(tuple(BACKGROUNDS)),
            size=size,
            position="center" if size == "large" else rng.choice(tuple(POSITIONS)),
            style=self.style or "plain",
        )
        return scene


CONCEPTS = {
    c.name: c
    for c in (
        Concept("star", "object", "object", "a five-pointed star, captioned only as 'object'", shape="star"),
        Concept("cross", "object", "object", "a plus-shaped cross, captioned only as 'object'", shape="cross"),
        Concept("crescent", "object", "object", "a crescent moon, captioned only as 'object'", shape="crescent"),
        Concept("outline", "style", "drawing", "any shape drawn as a thick outline, never mentioned in captions",
                style="outline"),
    )
}
N_EXAMPLES = 12


def get_concept(name: str) -> Concept:
    """The concept called `name`, or a OnewordError listing the known ones."""
    try:
        return CONCEPTS[name]
    except KeyError:
        raise OnewordError(f"unknown toy concept {name!r}; known: {', '.join(CONCEPTS)}") from None


def write_concept_examples(concept: Concept, out: Path, n: int = N_EXAMPLES, seed: int = 0) -> list[Path]:
    """Write the concept's example images with a `.txt` caption each, as a user's dataset folder.

    Captions describe what the base model has words for (colour, background, size, position; a hidden shape is
    "object", and the style is never mentioned), so that `[filewords]` carries the rest of the picture and the
    embedding only has to carry the concept: the new word then combines with colour words.
    """
    rng = random.Random(f"{concept.name}-{seed}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        scene = concept.example_scene(rng)
        path = out / f"{i:02d}-{concept.name}.png"
        render(scene, seed=rng.randrange(2**31)).save(path)
        path.with_suffix(".txt").write_text(caption(scene, rng, drop_rate=0.0) + "\n")
        paths.append(path)
    return paths
