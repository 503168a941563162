"""NAME's rule is said once: the check (oneword.outputs.name_problem), the help of every command that takes a NAME,
and docs/training.md say the same."""

from __future__ import annotations

import re
from pathlib import Path

from oneword.embeddings.create import CreateEmbeddingConfig
from oneword.fielddocs import field_docs
from oneword.hypernetworks.create import CreateHypernetworkConfig
from oneword.outputs import name_problem
from oneword.train.config import TrainConfig

DOC = Path(__file__).parents[2] / "docs" / "training.md"
RULE = "letters, digits, _, - and ."
"""The characters name_problem's refusal names."""


def _plain(text: str) -> str:
    return " ".join(text.replace("`", "").split())


def test_the_check_names_the_characters_the_help_and_the_docs_name():
    assert f"a name holds only {RULE}" in name_problem("NAME", "a/b")
    for config in (TrainConfig, CreateEmbeddingConfig, CreateHypernetworkConfig):
        assert RULE in _plain(field_docs(config)["name"]), config.__name__
    assert RULE.replace(", ", " (of any script), ", 1) in _plain(DOC.read_text(encoding="utf-8"))


def test_the_names_the_docs_give_as_refused_are_refused_and_those_given_as_names_are_names():
    text = _plain(DOC.read_text(encoding="utf-8"))
    refused = re.search(r"anything else \(([^)]*)\) is refused", text)
    accepted = re.search(r"\(([^)]*)\) (?:are|is) a name", text)
    assert refused and accepted
    for name in refused.group(1).split(", "):
        assert name_problem("NAME", name) is not None, name
    for name in accepted.group(1).split(", "):
        assert name_problem("NAME", name) is None, name

