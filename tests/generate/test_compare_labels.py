"""The compare grid's labels: the checkpoints of one run are labelled by step, the run's best one marked and
outlined, and no label is ever cut (a cut "starword-25…" reads as step 25 and as step 250)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.generate.compare import column_labels
from oneword.generate.grid import OUTLINE, labelled_grid
from oneword.train.best import CheckpointRecord, write_summary


def _checkpoints(run: Path, steps: tuple[int, ...], best: int | None) -> list[Path]:
    """A log folder's embeddings/NAME-STEP.pt and its checkpoints.csv marking `best`."""
    files = []
    for step in steps:
        path = run / "embeddings" / f"starword-{step}.pt"
        save_embedding(Embedding(name=path.stem, vectors={"*": torch.zeros(1, 64)}, step=step), path)
        files.append(path)
    records = [CheckpointRecord(step, path, 1.0 - step / 1000) for step, path in zip(steps, files)]
    write_summary(run / "checkpoints.csv", records, next((r for r in records if r.step == best), None))
    return files


def test_one_runs_checkpoints_are_labelled_by_step_and_its_best_is_marked(tmp_path):
    files = _checkpoints(tmp_path / "run", (25, 250), best=250)
    assert column_labels(files, [25, 250]) == (["step 25", "step 250 (best)"], 250)
    files = _checkpoints(tmp_path / "open", (25, 250), best=None)  # checkpoints.csv without a mark
    assert column_labels(files, [25, 250]) == (["step 25", "step 250"], None)


def test_files_of_several_runs_keep_their_names(tmp_path):
    a = _checkpoints(tmp_path / "a", (500,), best=500)
    b = tmp_path / "b" / "other.pt"
    save_embedding(Embedding(name="other", vectors={"*": torch.zeros(1, 64)}, step=500), b)
    assert column_labels([*a, b], [500, 500]) == (["starword-500", "other (500 steps)"], None)


def _ink_width(strip: np.ndarray) -> int:
    """How wide the dark pixels of a label strip reach, from its first inked column to its last."""
    inked = np.flatnonzero((strip.min(axis=2) < 128).any(axis=0))
    return int(inked[-1] - inked[0] + 1) if inked.size else 0


def test_labels_wrap_and_widen_their_column_instead_of_being_cut():
    cell = Image.new("RGB", (64, 64), (200, 220, 240))
    labels = ["no embedding", "step 25", "step 250 (best)", "mystarword-250 (250 steps)"]
    grid = labelled_grid([(label, [cell, cell]) for label in labels], outlined=2)
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    word = math.ceil(draw.textlength("mystarword-250", font=font))
    assert word > 60  # wider than a 64-px column: it widens its column, not loses its end
    widths = [64, 64, 64, word + 4]
    line = font.getbbox("Ag")[3] + 2
    label_height = 4 + 2 * line  # "step 250 (best)" and "no embedding" take two lines
    assert grid.size == (sum(widths), label_height + 2 * 64)
    pixels = np.asarray(grid)
    left = np.cumsum([0, *widths])
    for c, label in enumerate(labels):
        strip = pixels[:label_height, left[c]:left[c + 1]]
        widest = max(draw.textlength(text, font=font) for text in
                     {"no embedding": ["no", "embedding"], "step 250 (best)": ["step 250", "(best)"],
                      "mystarword-250 (250 steps)": ["mystarword-250", "(250 steps)"]}.get(label, [label]))
        assert abs(_ink_width(strip) - widest) <= 2, label
        body = pixels[label_height:, left[c]:left[c + 1]]
        assert (np.all(body == OUTLINE, axis=2).any()) == (c == 2), label  # only the best column is outlined
    pad = (widths[3] - 64) // 2  # the widened column's pictures are centred in it
    assert pad > 0 and np.array_equal(pixels[label_height:, left[3] + pad:left[3] + pad + 64],
                                      np.concatenate([np.asarray(cell)] * 2))
    assert (pixels[label_height:, left[3] + pad - 1] == 255).all()


def test_the_compare_command_outlines_the_runs_best_checkpoint(tmp_path, monkeypatch, capsys):
    from cli_helpers import run_in_process

    files = _checkpoints(tmp_path / "run", (25, 250), best=25)
    out = tmp_path / "grid.png"
    code, _, err = run_in_process(monkeypatch, capsys, "compare", *map(str, files), "--word", "starword", "--prompt",
                                  "a photo of starword", "--model", "tiny-sd1", "--seed", "3", "--steps", "1",
                                  "--embeddings-dir", str(tmp_path / "none"), "--out", str(out))
    assert code == 0, err
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape[1] == 3 * 64  # "no embedding", "step 25 (best)", "step 250": each fits its column
    body = pixels[pixels.shape[0] - 64:]
    assert [bool(np.all(body[:, c * 64:(c + 1) * 64] == OUTLINE, axis=2).any()) for c in range(3)] == [
        False, True, False]
