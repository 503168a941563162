"""The plateau rule of `--stop auto`."""

from __future__ import annotations

import random

from oneword.train.plateau import Plateau, smoothing_for


def first_stop(values, **settings) -> int | None:
    rule = Plateau(**settings)
    for i, value in enumerate(values):
        if rule.add(value):
            return i
    return None


def test_a_flat_noisy_series_stops_soon():
    rng = random.Random(0)
    flat = [0.2 + rng.uniform(-0.01, 0.01) for _ in range(50)]
    stop = first_stop(flat)
    assert stop is not None and stop <= 10


def test_a_steadily_improving_series_never_stops():
    improving = [1.0 * 0.95**i for i in range(60)]
    assert first_stop(improving) is None


def test_improvement_then_plateau_stops_after_the_patience():
    values = [1.0 * 0.8**i for i in range(10)] + [0.8**10] * 20
    stop = first_stop(values, patience=4)
    assert stop is not None and 10 <= stop <= 20  # the smoothing lags a few measurements behind


def test_scores_improve_upwards():
    rising = [min(1.0, 0.1 * i) for i in range(30)]
    stop = first_stop(rising, higher_is_better=True)
    assert stop is not None and stop >= 10  # flat only once it reaches 1.0
    assert first_stop(rising[:10], higher_is_better=True) is None


def test_never_before_the_minimum_measurements():
    assert first_stop([0.5, 0.5, 0.5], patience=1, min_measurements=4) is None
    assert first_stop([0.5, 0.5, 0.5, 0.5], patience=1, min_measurements=4) == 3


def test_unsmoothed_it_stops_exactly_the_patience_after_the_last_improvement():
    values = [1.0, 0.9, 0.8, 0.7, 0.7, 0.699] + [0.7] * 10  # 0.699 is within min_delta: no improvement
    assert first_stop(values, patience=3, smoothing=0.0) == 6
    smoothed = first_stop(values, patience=3, smoothing=0.5)
    assert smoothed is not None and smoothed > 6  # the moving average keeps "improving" for a while


def test_only_sampled_scores_are_smoothed():
    assert smoothing_for(signal_is_val_loss=True) == 0.0
    assert smoothing_for(signal_is_val_loss=False) > 0.0
