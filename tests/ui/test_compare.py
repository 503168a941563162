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


def test_compare_lists_and_draws_a_lora_runs_checkpoints(tmp_path):
    import torch
    from lora.lora_helpers import random_lora

    from oneword.lora.write import save_lora
    from oneword.train.best import CheckpointRecord, write_summary

    space = Workspace.at(tmp_path / "ws")
    folder = space.root / "runs" / "2026-12-07" / "zq"
    (folder / "lora").mkdir(parents=True)
    model = build_tiny("sd1", seed=0)
    records = []
    for step in (2, 4):
        lora = random_lora(model, name="zq", seed=step)
        path = folder / "lora" / f"zq-{step}.safetensors"
        save_lora(lora, path, {"ss_steps": str(step)})
        records.append(CheckpointRecord(step, path, 1.0 / step))
    write_summary(folder / "checkpoints.csv", records, records[1])
    hypernetwork_run = space.root / "runs" / "2026-12-06" / "hx" / "hypernetworks"
    hypernetwork_run.mkdir(parents=True)
    torch.save({}, hypernetwork_run / "hx-5.pt")
    assert generate.run_folders(space) == ["runs/2026-12-07/zq", "runs/2026-12-06/hx"]

    specs = generate.generate_specs()
    values = _values(specs, prompt="a photo of zq", model="tiny-sd1", steps=1, seed=3, out="outputs/txt2img")
    note, grid_path, parameters = generate.compare(space, ModelCache(), specs, values, "runs/2026-12-07/zq", "")
    assert note == "wrote outputs/compare/zq-3.png — step 4 ★ best, outlined in red"
    assert "Compared: zq-2.safetensors; zq-4.safetensors" in read_parameters(grid_path) == parameters
    pixels = np.asarray(Image.open(grid_path).convert("RGB"))
    assert pixels.shape[1] == 3 * 64  # no LoRA, step 2, step 4
    cells = [pixels[pixels.shape[0] - 64:, c * 64:(c + 1) * 64] for c in range(3)]
    assert not np.array_equal(cells[0], cells[1]) and not np.array_equal(cells[1], cells[2])

    note, grid_path, _ = generate.compare(space, ModelCache(), specs, values, "runs/2026-12-07/zq", "zq")
    assert grid_path is None and "--word: a LoRA changes the model, not a word of the prompt" in note
    note, grid_path, _ = generate.compare(space, ModelCache(), specs, values, "runs/2026-12-06/hx", "")
    assert grid_path is None and "hx-5.pt: not a checkpoint to compare" in note


def test_compare_refuses_a_runs_checkpoint_that_links_outside_the_workspace(tmp_path):
    import torch

    from oneword.embeddings.embedding import Embedding
    from oneword.embeddings.formats import save_embedding

    space = Workspace.at(tmp_path / "ws")
    outside = tmp_path / "elsewhere.pt"
    save_embedding(Embedding("zq", {"*": torch.zeros(1, 64)}, step=2), outside)
    link = space.root / "runs" / "2026-12-07" / "zq" / "embeddings" / "zq-2.pt"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    specs = generate.generate_specs()
    values = _values(specs, prompt="a zq", model="tiny-sd1", steps=1, seed=3, out="outputs/txt2img")
    note, grid_path, _ = generate.compare(space, ModelCache(), specs, values, "runs/2026-12-07/zq", "")
    assert grid_path is None
    assert note == f"**error:** run runs/2026-12-07/zq: zq-2.pt leads outside the workspace {space.root} (refused)"
