"""A run of any kind killed at any file operation resumes to exactly what an uninterrupted run leaves
(kill_driver.py): the same files, every trained tensor and optimizer moment bit for bit, each file loadable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from oneword.embeddings.formats import load_embedding_file
from oneword.embeddings.png import read_png_embedding
from oneword.errors import OnewordError
from oneword.hypernetworks.formats import load_hypernetwork
from oneword.lora.read import read_lora
from oneword.safeload import load_pickle

DRIVER = Path(__file__).with_name("kill_driver.py")
OWN = "own"
"""The driver's folder of the trained file (NAME.pt or NAME.safetensors)."""


class Files(NamedTuple):
    """Where a kind's run leaves its files."""

    checkpoints: str
    """The log folder's subfolder of NAME-STEP files."""
    suffix: str
    csv: str
    """The log folder's loss CSV."""


KINDS = {
    "embedding": Files("embeddings", ".pt", "textual_inversion_loss.csv"),
    "hypernetwork": Files("hypernetworks", ".pt", "hypernetwork_loss.csv"),
    "lora": Files("lora", ".safetensors", "lora_loss.csv"),
    "pivotal": Files("lora", ".safetensors", "pivotal_loss.csv"),
}


def _same(a, b) -> bool:
    """Equal nested dicts, lists and tensors (tensors bit for bit)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _stored(path: Path):
    """What a trained file holds: a pickle's dict, or a safetensors file's tensors and metadata."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}, f.metadata()  # noqa: SIM118
    return load_pickle(path)


def _step_and_name(path: Path) -> tuple[int, str]:
    """The step and the name a trained file records."""
    if path.suffix == ".safetensors":
        metadata = _stored(path)[1]
        return int(metadata["ss_steps"]), metadata["ss_output_name"]
    data = load_pickle(path)
    return data["step"], data["name"]


def _log(root: Path) -> Path:
    (folder,) = (root / "log").glob("*/zqx")
    return folder


def _loads(path: Path, kind: str) -> None:
    """Read a file the way its users do; raises when it does not load."""
    if path.suffix == ".pt":
        load_embedding_file(path) if kind == "embedding" else load_hypernetwork(path)
    elif path.suffix == ".safetensors":
        read_lora(path)
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


def _differences(whole: Path, other: Path, kind: str) -> list[str]:
    """What the resumed run `other` left differently from the uninterrupted run `whole`."""
    files = KINDS[kind]
    problems = []
    a, b = _log(whole), _log(other)
    for name in (files.csv, "checkpoints.csv"):
        if not (b / name).is_file() or (a / name).read_text() != (b / name).read_text():
            problems.append(f"{name} differs")
    own = f"{OWN}/zqx{files.suffix}"
    trained = [(own, whole / own, other / own), (f"{own}.optim", whole / f"{own}.optim", other / f"{own}.optim")]
    for step in (2, 4, 6):
        name = f"{files.checkpoints}/zqx-{step}{files.suffix}"
        trained.append((name, a / name, b / name))
    trained.append((f"zqx-6{files.suffix}.optim", a / f"{name}.optim", b / f"{name}.optim"))
    for label, x, y in trained:  # the trained tensors, step, name, metadata; optimizer moments and history
        try:
            if not _same(_stored(x), _stored(y)):
                problems.append(f"{label} differs")
        except (OnewordError, OSError) as error:
            problems.append(f"{label}: {error}")
    made = [p for p in [*b.rglob("*"), *(other / OWN).iterdir()] if p.is_file()]
    names = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if not p.name.startswith("settings-"))
    expected = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if not p.name.startswith("settings-"))
    if names != expected:
        problems.append(f"log folder holds {sorted(set(names) ^ set(expected))} unlike the uninterrupted run")
    for path in made:
        try:
            _loads(path, kind)
        except Exception as error:  # any failure to load is what this test reports
            problems.append(f"{path.name} does not load: {error}")
    return problems


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the driver forks its runs from one process")
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_run_killed_at_any_file_operation_resumes_bit_equal(tmp_path, kind):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, str(DRIVER), str(tmp_path), kind], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    operations, codes = result["operations"], result["codes"]
    assert operations >= 20 and codes["whole"] == 0, done.stderr[-3000:]
    whole, files = tmp_path / "whole", KINDS[kind]
    assert _step_and_name(whole / OWN / f"zqx{files.suffix}") == (4, "zqx")  # the scorer's best, not the last step
    assert _step_and_name(_log(whole) / files.checkpoints / f"zqx-6{files.suffix}") == (6, "zqx-6")
    problems = []
    for n in range(1, operations + 1):
        if (codes[f"kill-{n}"], codes[f"resume-{n}"]) != (9, 0):
            problems.append(f"operation {n}: exit codes {codes[f'kill-{n}']}, {codes[f'resume-{n}']}")
            continue
        problems += [f"operation {n}: {p}" for p in _differences(whole, tmp_path / f"kill-{n}", kind)]
    assert not problems, "\n".join(problems[:40]) + "\n" + done.stderr[-2000:]
