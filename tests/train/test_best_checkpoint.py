"""Every run ends with a summary of its checkpoints, the best one copied as NAME.pt, and its pictures; `--stop auto`
stops when the signal plateaus."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from train_helpers import settings

from oneword.embeddings.formats import load_embedding_file
from oneword.errors import OnewordError
from oneword.models.tiny import build_tiny
from oneword.train.best import CheckpointRecord, best_record
from oneword.train.loop import train


class StepScorer:
    """A scorer whose verdict is a given function of the checkpoint's step (the selection logic under test)."""

    key = "fake"

    def __init__(self, by_step):
        self.by_step = by_step
        self.seen = []

    def score(self, context):
        self.seen.append(context.snapshot.step)
        return {"fake": self.by_step(context.snapshot.step)}


def vectors(path):
    return next(iter(load_embedding_file(path).vectors.values()))


def test_the_best_checkpoint_becomes_name_pt_and_the_run_leaves_its_summary_and_pictures(tmp_path):
    scorer = StepScorer(lambda step: {4: 0.9, 8: 0.5, 12: 0.7}[step])
    config = settings(tmp_path, max_steps=12, save_every=4, preview_every=4, validate_every=2)
    finished = train(config, build_tiny("sd1", seed=0), scorers=[scorer])

    assert scorer.seen == [4, 8, 12]
    assert finished.reason == "done" and finished.best_step == 4 and finished.signal == "fake"
    assert "best checkpoint by fake is step 4" in finished.message
    root = finished.log_folder
    best = root / "embeddings" / "zqx-4.pt"
    assert torch.equal(vectors(finished.embedding_path), vectors(best))
    assert load_embedding_file(finished.embedding_path).step == 4
    assert not torch.equal(vectors(root / "embeddings" / "zqx-12.pt"), vectors(best))  # the last stays in the log

    lines = (root / "checkpoints.csv").read_text().splitlines()
    assert lines[0] == "step,val_loss,fake,best"
    assert [line.split(",")[0] for line in lines[1:]] == ["4", "8", "12"]
    assert [line.split(",")[-1] for line in lines[1:]] == ["*", "", ""]
    assert all(float(line.split(",")[1]) > 0 for line in lines[1:])  # every checkpoint has its validation loss
    assert [float(line.split(",")[2]) for line in lines[1:]] == [0.9, 0.5, 0.7]

    with Image.open(root / "loss.png") as plot:
        assert plot.format == "PNG" and plot.width >= 600
    with Image.open(root / "previews.png") as grid:
        assert grid.format == "PNG"
        # three cells, the chosen (first) one outlined in red
        assert grid.width == 3 * 192
        assert grid.getpixel((1, 16 + 96))[:3] == (230, 40, 40)
        assert grid.getpixel((192 + 1, 16 + 96))[:3] != (230, 40, 40)


def test_without_scores_the_lowest_validation_loss_is_best(tmp_path):
    config = settings(tmp_path, max_steps=12, save_every=4, validate_every=4, learn_rate="0.05")
    finished = train(config, build_tiny("sd1", seed=0))
    assert finished.signal == "val_loss"
    losses = {r.step: r.val_loss for r in finished.records}
    assert sorted(losses) == [4, 8, 12]
    lowest = min(losses.values())
    assert finished.best_step == max(step for step, loss in losses.items() if loss <= lowest * 1.002)
    assert torch.equal(vectors(finished.embedding_path),
                       vectors(finished.log_folder / "embeddings" / f"zqx-{finished.best_step}.pt"))


def test_stop_auto_ends_a_run_whose_score_is_flat(tmp_path):
    scorer = StepScorer(lambda step: 0.5)
    config = settings(tmp_path, max_steps=200, save_every=2, stop="auto", stop_patience=3)
    finished = train(config, build_tiny("sd1", seed=0), scorers=[scorer])
    # measurements at steps 2, 4, ...: the first sets the best, three more without improvement stop the run
    # (and never before four measurements)
    assert finished.reason == "plateau" and finished.step == 8
    assert "stopped improving" in finished.message
    assert finished.best_step == 8  # equal scores are a tie: the latest checkpoint wins


def test_stop_auto_keeps_going_while_the_score_improves(tmp_path):
    scorer = StepScorer(lambda step: step / 100)
    config = settings(tmp_path, max_steps=24, save_every=2, stop="auto", stop_patience=3)
    finished = train(config, build_tiny("sd1", seed=0), scorers=[scorer])
    assert finished.reason == "done" and finished.step == 24 and finished.best_step == 24


def test_stop_auto_smooths_a_score_before_judging_its_plateau(tmp_path):
    # the score jumps to its final value at step 6; unsmoothed, steps 8, 10 and 12 would not improve on it and the
    # run would stop at 12, but the moving average keeps rising by more than 1% for several measurements more
    scorer = StepScorer(lambda step: {2: 0.1, 4: 0.5}.get(step, 0.9))
    config = settings(tmp_path, max_steps=40, save_every=2, stop="auto")
    finished = train(config, build_tiny("sd1", seed=0), scorers=[scorer])
    assert finished.reason == "plateau" and 12 < finished.step < 40


def test_stop_auto_on_the_validation_loss_stops_when_the_vectors_do_not_move(tmp_path):
    config = settings(tmp_path, max_steps=200, learn_rate="1e-12", save_every=0, validate_every=2, stop="auto")
    finished = train(config, build_tiny("sd1", seed=0))
    assert finished.reason == "plateau" and finished.signal == "val_loss"
    assert finished.step == 8  # four measurements: one best, three (the default patience) without improvement
    # --stop auto keeps a checkpoint at every measurement even with --save-every 0, so it has one to choose
    assert [r.step for r in finished.records] == [2, 4, 6, 8]
    assert sorted(p.name for p in (finished.log_folder / "embeddings").iterdir()) == [
        "zqx-2.pt", "zqx-4.pt", "zqx-6.pt", "zqx-8.pt", "zqx-8.pt.optim"]  # the last step's optimizer state


def test_a_stop_signal_no_scorer_gives_is_refused(tmp_path):
    config = settings(tmp_path, stop="auto", stop_signal="clip_image")
    try:
        train(config, build_tiny("sd1", seed=0))
    except OnewordError as error:
        assert "--stop-signal clip_image" in str(error)
    else:
        raise AssertionError("an unknown stop signal was accepted")
    assert not (tmp_path / "log").exists()  # nothing written


def test_the_feature_score_is_a_similarity(tmp_path):
    from oneword.score.features import FeatureScorer

    config = settings(tmp_path, max_steps=4, save_every=4, preview_steps=2)
    finished = train(config, build_tiny("sd1", seed=0), scorers=[FeatureScorer(samples=2)])
    (record,) = finished.records
    assert -1.0 <= record.scores["features"] <= 1.0


def test_loss_png_gives_the_validation_loss_its_own_panel_and_keeps_the_legends_off_the_lines():
    from oneword.train.pictures import loss_figure, smoothed

    train_losses = [(s, 1.2 if s % 20 == 0 else 0.05 + 0.0001 * (s % 7)) for s in range(1, 201)]  # a few spikes
    val_losses = [(50, 0.0731), (100, 0.0722), (150, 0.0725), (200, 0.0728)]
    records = [CheckpointRecord(s, Path(f"{s}.pt"), v, {"fake": 0.1 * i}) for i, (s, v) in enumerate(val_losses)]
    figure = loss_figure(train_losses, val_losses, records, chosen_step=100)
    panels = {ax.get_ylabel(): ax for ax in figure.axes}
    assert set(panels) == {"training loss", "validation loss", "score (higher is better)"}
    top, bottom = panels["training loss"], panels["validation loss"]
    assert top.get_position().y0 > bottom.get_position().y1  # two panels, one above the other
    low, high = bottom.get_ylim()  # the validation panel is scaled to its own values: they fill most of it
    assert low < 0.0722 and high > 0.0731 and (0.0731 - 0.0722) / (high - low) > 0.8
    smooth = smoothed([v for _, v in train_losses])
    assert top.get_ylim()[0] == 0 and max(smooth[10:]) < top.get_ylim()[1] < 1.2  # the spikes run off the top
    assert max(smooth[10:]) / top.get_ylim()[1] > 0.5  # the smoothed curve is not squashed to the bottom
    figure.canvas.draw()
    areas = [ax.get_window_extent() for ax in (top, bottom)]
    legends = figure.legends
    assert len(legends) == 2
    assert [t.get_text() for t in legends[1].get_texts()] == ["validation loss (fixed batch)", "fake",
                                                              "chosen: step 100"]
    for legend in legends:  # each legend stands beside the panels, on no line
        box = legend.get_window_extent()
        assert not any(box.overlaps(area) for area in areas)
        assert box.x1 <= figure.bbox.x1 + 1  # and inside the picture


def test_checkpoints_the_validation_loss_cannot_tell_apart_choose_the_latest():
    def records(losses):
        return [CheckpointRecord(step, Path(f"{step}.pt"), loss) for step, loss in losses.items()]

    # 0.0731 at step 50 and within 0.2% of it at 100, 150 and 200: a tie, the latest wins; 250 is 0.5% worse
    flat = {50: 0.07310, 100: 0.07322, 150: 0.07315, 200: 0.07318, 250: 0.07347}
    assert best_record(records(flat), "val_loss").step == 200
    # a real minimum (0.4% below the next best) is still chosen
    dip = {50: 0.0700, 100: 0.0680, 150: 0.0683, 200: 0.0685}
    assert best_record(records(dip), "val_loss").step == 100
    # scores: higher is better, an exact tie goes to the later checkpoint
    scored = [CheckpointRecord(s, Path(f"{s}.pt"), None, {"fake": v}) for s, v in ((4, 0.9), (8, 0.5), (12, 0.9))]
    assert best_record(scored, "fake").step == 12
