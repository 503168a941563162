"""`accelerate launch -m oneword train` on two CPU processes (gloo) trains what one process trains at the same global
batch: the same vectors within float rounding, one log folder, one report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from train_helpers import settings, write_images

import oneword
from oneword.embeddings.formats import load_embedding_file
from oneword.models.tiny import build_tiny
from oneword.train.loop import train

RUN = ["--model", "tiny-sd1", "--init-text", "ball", "--batch-size", "3", "--grad-accum", "2", "--max-steps", "4",
       "--save-every", "2", "--preview-every", "0", "--validate-every", "2", "--csv-every", "2", "--device", "cpu"]


def test_two_processes_train_the_vectors_of_one_at_the_same_global_batch(tmp_path):
    write_images(tmp_path / "data")  # 4 pictures: one batch of 3 per epoch, split 1 + 2 between the processes
    one = train(settings(tmp_path / "one", batch_size=3, grad_accum=2, max_steps=4, save_every=2, validate_every=2,
                         csv_every=2, data=tmp_path / "data"), build_tiny("sd1", seed=0))
    env = {**os.environ, "PYTHONPATH": str(Path(oneword.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
         "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
         "-m", "oneword", "train", "zqx", "--data", str(tmp_path / "data"), *RUN,
         "--log-dir", str(tmp_path / "two" / "log"), "--embeddings-dir", str(tmp_path / "two" / "emb")],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("trained 4 steps") == 1  # only the main process reports
    two_log = tmp_path / "two" / "log"
    folders = [p for p in two_log.glob("*/zqx")]
    assert len(folders) == 1
    (settings_file,) = folders[0].glob("settings-*.json")
    assert json.loads(settings_file.read_text())["processes"] == 2  # two processes did train
    vectors = {}
    for step in (2, 4):
        a = load_embedding_file(one.log_folder / "embeddings" / f"zqx-{step}.pt").vectors["*"]
        b = load_embedding_file(folders[0] / "embeddings" / f"zqx-{step}.pt").vectors["*"]
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        vectors[step] = a
    assert (vectors[4] - vectors[2]).abs().max() > 1e-3  # the steps moved the vectors: the match is not trivial
    final = load_embedding_file(tmp_path / "two" / "emb" / "zqx.pt")
    assert final.step == load_embedding_file(one.embedding_path).step
    one_csv = (one.log_folder / "textual_inversion_loss.csv").read_text().splitlines()
    two_csv = (folders[0] / "textual_inversion_loss.csv").read_text().splitlines()
    assert len(one_csv) == len(two_csv) == 3  # header, steps 2 and 4
    for row_one, row_two in zip(one_csv[1:], two_csv[1:]):
        a, b = row_one.split(","), row_two.split(",")
        assert a[:3] == b[:3]  # step, epoch, epoch_step
        assert abs(float(a[3]) - float(b[3])) < 1e-5 and abs(float(a[5]) - float(b[5])) < 1e-5  # loss, val_loss
