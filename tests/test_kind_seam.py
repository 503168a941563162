"""The loop's modules, the scorers and generation name no kind: no kind's name compared as a string, no isinstance on
an Embedding or a Hypernetwork. What differs between kinds is declared by the kind's module (oneword/kinds/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "oneword"
SEAM = [PACKAGE / "train" / f"{name}.py" for name in ("loop", "step", "checkpoint", "validation", "best", "plateau",
                                                     "start", "logfolder", "preview", "saving", "resume", "scoring",
                                                     "trainable", "config")]
SEAM += [PACKAGE / "cli" / "train.py", PACKAGE / "ui" / "tabs" / "train.py"]
SEAM += sorted((PACKAGE / "score").rglob("*.py")) + sorted((PACKAGE / "generate").rglob("*.py"))
KIND_NAMES = {"embedding", "hypernetwork"}
KIND_CLASSES = {"Embedding", "Hypernetwork"}


def kind_decisions(path: Path) -> list[str]:
    """Each place in the file that decides by kind: a comparison with a kind's name, an isinstance on a kind's class."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            strings = {o.value for o in operands if isinstance(o, ast.Constant)}
            for o in operands:
                if isinstance(o, (ast.Tuple, ast.List, ast.Set)):
                    strings |= {e.value for e in o.elts if isinstance(e, ast.Constant)}
            if strings & KIND_NAMES:
                found.append((node.lineno, node.col_offset, f"compares with {sorted(strings & KIND_NAMES)}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            names = {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node.args[1])
                     if isinstance(n, (ast.Name, ast.Attribute))} if len(node.args) == 2 else set()
            if names & KIND_CLASSES:
                found.append((node.lineno, node.col_offset, f"isinstance on {sorted(names & KIND_CLASSES)}"))
    return [f"{path.name}:{line}: {what}" for line, _, what in sorted(found)]


def test_the_seam_covers_the_files_it_names():
    assert all(path.is_file() for path in SEAM)
    assert len(SEAM) > 10


@pytest.mark.parametrize("path", SEAM, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_kind_is_named_in_the_shared_code(path):
    assert kind_decisions(path) == []


def test_the_check_finds_a_kind_decision(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('if kind == "hypernetwork" or run.kind in ("embedding",):\n    pass\n'
                      'if isinstance(snapshot, Embedding):\n    pass\n'
                      'if isinstance(snapshot, (torch.Tensor, hyper.Hypernetwork)):\n    pass\n', encoding="utf-8")
    assert kind_decisions(sample) == ["sample.py:1: compares with ['hypernetwork']",
                                      "sample.py:1: compares with ['embedding']",
                                      "sample.py:3: isinstance on ['Embedding']",
                                      "sample.py:5: isinstance on ['Hypernetwork']"]
