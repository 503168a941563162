"""A resumed run is shown whole on the Train tab: its previews, curves and checkpoints from step 0, the best
checkpoint of the run's first part marked in the gallery, and the summary and loss.png of the whole run."""

from __future__ import annotations

from PIL import Image

from oneword.models.tiny import build_tiny
from oneword.train.config import TrainConfig
from oneword.train.loop import train
from oneword.ui.jobs import JobState, _apply
from oneword.ui.tabs.train import redraw


class StepScorer:
    """A score given by step: the best checkpoint is step 2, in the run's first part."""

    key = "fake"

    def score(self, context):
        return {"fake": {2: 0.9}.get(context.snapshot.step, 0.1 * context.snapshot.step / 8)}


def _config(tmp_path, **changes) -> TrainConfig:
    data = tmp_path / "data"
    if not data.is_dir():
        data.mkdir()
        for i in range(2):
            Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(data / f"{i}.png")
    base = {"name": "zq", "data": data, "model": "tiny-sd1", "init_text": "ball", "save_every": 2, "preview_every": 2,
            "preview_steps": 1, "validate_every": 2, "csv_every": 2, "batch_size": 2, "log_dir": tmp_path / "log",
            "embeddings_dir": tmp_path / "emb"}
    return TrainConfig(**{**base, **changes})


def test_a_resumed_run_shows_its_first_parts_previews_best_and_history(tmp_path, monkeypatch):
    monkeypatch.setattr("oneword.train.loop.PROGRESS_EVERY", 1)  # a chart point per step
    drawn = []  # what loss.png is drawn from, at the end of each part
    monkeypatch.setattr("oneword.train.history.plot_losses",
                        lambda path, train_losses, val_losses, records, chosen: drawn.append(
                            ([s for s, _ in train_losses], [s for s, _ in val_losses], chosen)))
    first = train(_config(tmp_path, max_steps=4), build_tiny("sd1", seed=0), scorers=[StepScorer()])
    assert first.best_step == 2
    page = JobState()  # what the Train tab draws of the resumed run
    resumed = train(_config(tmp_path, max_steps=8, resume=True), build_tiny("sd1", seed=0),
                    lambda event: _apply(page, event), scorers=[StepScorer()])
    assert (resumed.step, resumed.best_step) == (8, 2)
    gallery = redraw(page, {})[5]
    images = resumed.log_folder / "images"
    assert gallery == [(str(images / f"zq-{step}.png"), f"step {step}" + (" ★ best" if step == 2 else ""))
                       for step in (2, 4, 6, 8)]
    assert [step for step, _, _ in page.train_loss] == list(range(1, 9))
    assert [step for step, _ in page.val_loss] == [2, 4, 6, 8]
    summary = redraw(page, {})[6]["value"]
    assert summary["step"].tolist() == ["2", "4", "6", "8"] and summary["best"].tolist() == ["*", "", "", ""]
    rows = (resumed.log_folder / "checkpoints.csv").read_text().splitlines()
    assert [(r.split(",")[0], r.split(",")[-1]) for r in rows[1:]] == [("2", "*"), ("4", ""), ("6", ""), ("8", "")]
    assert drawn[-1] == (list(range(1, 9)), [2, 4, 6, 8], 2)  # loss.png of the whole run, from step 1
