"""A run killed at any file operation resumes to exactly what an uninterrupted run leaves (kill_driver.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from oneword.embeddings.formats import load_embedding_file
from oneword.embeddings.png import read_png_embedding
from oneword.errors import OnewordError
from oneword.safeload import load_pickle

DRIVER = Path(__file__).with_name("kill_driver.py")


def _same(a, b) -> bool:
    """Equal nested dicts, lists and tensors (tensors bit for bit)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _log(root: Path) -> Path:
    (folder,) = (root / "log").glob("*/zqx")
    return folder


def _loads(path: Path) -> None:
    """Read a file the way its users do; raises when it does not load."""
    if path.suffix == ".pt":
        load_embedding_file(path)
    elif path.suffix == ".optim":
        assert isinstance(load_pickle(path), dict)
    elif path.suffix == ".png":
        with Image.open(path) as image:
            image.load()
        if path.parent.name == "image_embeddings":
            assert read_png_embedding(path) is not None
    elif path.suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".csv":
        assert path.read_text(encoding="utf-8").startswith("step,")
    else:
        raise AssertionError(f"unexpected file {path.name}")


def _differences(whole: Path, other: Path) -> list[str]:
    """What the resumed run `other` left differently from the uninterrupted run `whole`."""
    problems = []
    a, b = _log(whole), _log(other)
    for name in ("textual_inversion_loss.csv", "checkpoints.csv"):
        if not (b / name).is_file() or (a / name).read_text() != (b / name).read_text():
            problems.append(f"{name} differs")
    trained = [("emb/zqx.pt", whole / "emb/zqx.pt", other / "emb/zqx.pt")]
    trained += [(f"zqx-{s}.pt", a / f"embeddings/zqx-{s}.pt", b / f"embeddings/zqx-{s}.pt") for s in (2, 4, 6)]
    trained += [("emb/zqx.pt.optim", whole / "emb/zqx.pt.optim", other / "emb/zqx.pt.optim"),
                ("zqx-6.pt.optim", a / "embeddings/zqx-6.pt.optim", b / "embeddings/zqx-6.pt.optim")]
    for label, x, y in trained:  # the stored dicts: vectors, step, name, model; optimizer moments and history
        try:
            if not _same(load_pickle(x), load_pickle(y)):
                problems.append(f"{label} differs")
        except OnewordError as error:
            problems.append(str(error))
    files = [p for p in [*b.rglob("*"), *(other / "emb").iterdir()] if p.is_file()]
    names = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if not p.name.startswith("settings-"))
    expected = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if not p.name.startswith("settings-"))
    if names != expected:
        problems.append(f"log folder holds {sorted(set(names) ^ set(expected))} unlike the uninterrupted run")
    for path in files:
        try:
            _loads(path)
        except Exception as error:  # any failure to load is what this test reports
            problems.append(f"{path.name} does not load: {error}")
    return problems


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the driver forks its runs from one process")
def test_a_run_killed_at_any_file_operation_resumes_bit_equal(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, str(DRIVER), str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    operations, codes = result["operations"], result["codes"]
    assert operations >= 20 and codes["whole"] == 0, done.stderr[-3000:]
    whole = tmp_path / "whole"
    best = load_pickle(whole / "emb" / "zqx.pt")
    assert (best["step"], best["name"]) == (4, "zqx")  # the scorer's best, not the last step
    assert load_pickle(_log(whole) / "embeddings" / "zqx-6.pt")["name"] == "zqx-6"
    problems = []
    for n in range(1, operations + 1):
        if (codes[f"kill-{n}"], codes[f"resume-{n}"]) != (9, 0):
            problems.append(f"operation {n}: exit codes {codes[f'kill-{n}']}, {codes[f'resume-{n}']}")
            continue
        problems += [f"operation {n}: {p}" for p in _differences(whole, tmp_path / f"kill-{n}")]
    assert not problems, "\n".join(problems[:40]) + "\n" + done.stderr[-2000:]
