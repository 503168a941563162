"""A small training set and settings for the trainer's tests (tiny random SD 1.x model, 64 px)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from oneword.train.config import TrainConfig


def write_images(folder: Path, n: int = 4, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """`n` seeded noise pictures named as preprocess names them, one with a `.txt` caption."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"{i:05d}-0-a red ball.png")
    (folder / "00001-0-a red ball.txt").write_text("a blue ball, on grass", encoding="utf-8")
    return folder


def settings(tmp_path: Path, **changes) -> TrainConfig:
    """A short run on `tmp_path/data` writing under `tmp_path`; `changes` override fields."""
    data = tmp_path / "data"
    if not data.exists():
        write_images(data)
    base = dict(
        name="zqx", data=data, model="tiny-sd1", init_text="ball", max_steps=12, save_every=6, preview_every=0,
        batch_size=2, csv_every=3, log_dir=tmp_path / "log", embeddings_dir=tmp_path / "emb", preview_steps=2,
    )
    if changes.get("kind") == "lora":
        del base["init_text"]  # a LoRA adds no word: --init-text is refused for it
    return TrainConfig(**{**base, **changes})
