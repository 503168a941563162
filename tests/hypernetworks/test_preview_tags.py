"""A training run's preview prompt goes through the prompt tags as `generate` does: `<hypernet:NAME:W>` draws the
hypernetwork from the run's hypernetwork folder, and a malformed tag is refused before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
from hypernetwork_helpers import a1111_file
from PIL import Image
from train.train_helpers import settings

from oneword.errors import OnewordError
from oneword.models.tiny import build_tiny
from oneword.train.loop import train


def _preview(tmp_path, prompt: str) -> np.ndarray:
    run = tmp_path / prompt.replace("<", "").replace(">", "").replace(":", "-").replace(" ", "_")
    (run / "data").parent.mkdir(parents=True, exist_ok=True)
    config = settings(run, max_steps=2, save_every=0, preview_every=2, preview_prompt=prompt, learn_rate="0",
                      hypernetwork_dir=tmp_path / "hn")
    finished = train(config, build_tiny("sd1", seed=0))
    with Image.open(finished.log_folder / "images" / "zqx-2.png") as image:
        return np.asarray(image.convert("RGB"))


def test_a_preview_prompt_applies_its_hypernetwork_tag(tmp_path):
    model = build_tiny("sd1", seed=0)
    (tmp_path / "hn").mkdir()
    a1111_file(tmp_path / "hn" / "style.pt", model.unet.config.cross_attention_dim, seed=3, scale=0.5)
    plain = _preview(tmp_path, "a photo of zqx")
    assert np.array_equal(_preview(tmp_path, "a photo of zqx <hypernet:style:0>"), plain)
    assert not np.array_equal(_preview(tmp_path, "a photo of zqx <hypernet:style:1>"), plain)


def test_a_malformed_preview_tag_is_refused_before_the_run_writes(tmp_path):
    config = settings(tmp_path, max_steps=2, preview_every=2, preview_prompt="zqx <hypernet:>",
                      hypernetwork_dir=tmp_path / "hn")
    with pytest.raises(OnewordError, match="hypernet"):
        train(config, build_tiny("sd1", seed=0))
    assert not (tmp_path / "log").exists() and not (tmp_path / "emb").exists()
