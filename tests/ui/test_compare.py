"""Compare on the Generate tab: a run's checkpoints side by side, each column labelled by its step and the run's
best checkpoint (the one its checkpoints.csv marks) named in the message and outlined in the grid."""

from __future__ import annotations

import numpy as np
from PIL import Image

from oneword.generate.pnginfo import read_parameters
from oneword.models.tiny import build_tiny
from oneword.train.config import TrainConfig
from oneword.train.loop import train
from oneword.ui.models import ModelCache
from oneword.ui.paths import Workspace
from oneword.ui.tabs import generate

OUTLINE = (230, 40, 40)
"""The red of the best column's outline (previews.png's too)."""


def _values(specs, **changes) -> list:
    return [changes.get(spec.name, spec.default) for spec in specs]


def test_compare_labels_each_checkpoint_by_step_and_marks_the_runs_best(tmp_path):
    space = Workspace.at(tmp_path / "ws")
    data = space.root / "datasets" / "star"
    data.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(data / f"{i}.png")
    finished = train(TrainConfig(name="zq", data=data, model="tiny-sd1", init_text="ball", max_steps=6, save_every=2,
                                 validate_every=2, preview_every=0, batch_size=2, log_dir=space.root / "textual_inversion",
                                 embeddings_dir=space.root / "embeddings"), build_tiny("sd1", seed=0))
    assert [r.step for r in finished.records] == [2, 4, 6] and finished.best_step is not None
    run = space.relative(finished.log_folder)
    specs = generate.generate_specs()
    values = _values(specs, prompt="a zq", model="tiny-sd1", steps=1, seed=3, out="outputs/txt2img")
    note, grid_path, parameters = generate.compare(space, ModelCache(), specs, values, run, "zq")
    assert note == f"wrote outputs/compare/zq-3.png — step {finished.best_step} ★ best, outlined in red"
    assert "Compared: zq-2.pt; zq-4.pt; zq-6.pt" in read_parameters(grid_path) == parameters
    pixels = np.asarray(Image.open(grid_path).convert("RGB"))
    assert pixels.shape[1] == 4 * 64  # no embedding, step 2, step 4, step 6: every label fits its column
    label_height = pixels.shape[0] - 64
    outlined = [bool(np.all(pixels[label_height:, c * 64:(c + 1) * 64] == OUTLINE, axis=2).any()) for c in range(4)]
    assert outlined == [step == finished.best_step for step in (None, 2, 4, 6)]
