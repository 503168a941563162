"""The training claim, reduced: an embedding trained with the defaults learns a hidden shape and obeys colours.

The full measurement (every object concept, 64 samples per prompt) is `benchmarks/concept_accuracy.py`; this runs
the same code on one concept with fewer samples, so that a change that stops embeddings from learning fails here.
"""

from __future__ import annotations

from oneword.toy.bundle import load_toy
from oneword.toy.concepts import CONCEPTS
from oneword.toy.evaluate import evaluate_concept


def test_an_embedding_learns_the_star_within_500_steps_and_keeps_colours(tmp_path):
    model, judge = load_toy("toy")
    result = evaluate_concept(model, judge, CONCEPTS["star"], tmp_path, steps=500, samples=20, every=500)
    assert result["baseline"] <= 0.4
    assert result["final"] >= 0.9, result
    assert result["colour"] >= 0.85, result
