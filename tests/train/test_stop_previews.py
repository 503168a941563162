"""Previews follow the checkpoints under `--stop auto` when `--preview-every` is not given: a run that stops on a
plateau well before step 500 still leaves a preview per checkpoint and `previews.png`, as the README says."""

from __future__ import annotations

from cli_helpers import run_in_process
from train_helpers import write_images

from oneword.train.config import TrainConfig


def test_an_auto_stopped_run_previews_each_checkpoint_unless_told_otherwise(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    code, out, err = run_in_process(
        monkeypatch, capsys, "train", "zqx", "--model", "tiny-sd1", "--data", str(tmp_path / "data"),
        "--log-dir", str(tmp_path / "log"), "--embeddings-dir", str(tmp_path / "emb"), "--init-text", "ball",
        "--stop", "auto", "--save-every", "2", "--validate-every", "2", "--validation-size", "2", "--max-steps", "4",
        "--batch-size", "2", "--preview-steps", "2", "--device", "cpu")
    assert code == 0, err
    (folder,) = (tmp_path / "log").glob("*/zqx")
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["zqx-2.png", "zqx-4.png"]
    assert (folder / "previews.png").is_file()


def test_the_preview_interval_left_unset_is_the_checkpoints_under_stop_auto_and_500_otherwise(tmp_path):
    def every(**changes) -> int:
        return TrainConfig(name="zqx", data=tmp_path, **changes).preview_every

    assert every() == 500 and every(save_every=50) == 500
    assert every(stop="auto") == 50  # the validation loss is measured, and a checkpoint kept, every 50 steps
    assert every(stop="auto", save_every=20) == 20
    assert every(stop="auto", validate_every=0, save_every=100) == 100
    assert every(stop="auto", preview_every=0) == 0 and every(stop="auto", preview_every=500) == 500
