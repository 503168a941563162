"""Nothing a run needs only later is loaded before its first optimizer step: diffusers' pipelines (Stable
Diffusion's and SDXL's, the safety checker, CLIP's vision model) come with the first preview, not with the loop.
Checked in a fresh interpreter, at the first step, through the run's timing hook (oneword/timing.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from train_helpers import write_images

PIPELINES = "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion"

_RUN = r"""
import json, sys
from pathlib import Path

from oneword import timing
from oneword.models.load import load_base
from oneword.train.config import TrainConfig
from oneword.train.loop import train

seen = {{}}


def listen(name, start, end):
    if name == "optimizer step" and not seen:
        seen["pipelines"] = {pipelines!r} in sys.modules


folder = Path({folder!r})
config = TrainConfig(name="zqx", data=folder / "data", model="tiny-sd1", init_text="ball", max_steps=1,
                     save_every=0, preview_every={preview}, preview_steps=1, batch_size=2, log_dir=folder / "log",
                     embeddings_dir=folder / "emb")
with timing.recording(listen):
    train(config, load_base("tiny-sd1"))
print(json.dumps({{**seen, "after": {pipelines!r} in sys.modules}}))
"""


def test_the_first_step_comes_before_the_pipelines_load_and_the_preview_after_it(tmp_path):
    write_images(tmp_path / "data")
    code = _RUN.format(pipelines=PIPELINES, folder=str(tmp_path), preview=1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"pipelines": False, "after": True}
    assert [p.name for p in (tmp_path / "log").rglob("images/*.png")] == ["zqx-1.png"]
