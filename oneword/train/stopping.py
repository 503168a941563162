"""`--stop auto` for one run: which series it watches (`--stop-signal`) and the plateau rule built from its options."""

from __future__ import annotations

from oneword.errors import OnewordError
from oneword.train.best import VAL_LOSS, lower_is_better
from oneword.train.config import TrainConfig
from oneword.train.plateau import Plateau, smoothing_for


def stop_signal(config: TrainConfig, scorers: list) -> str:
    """`--stop-signal` resolved: auto is the first scorer's key, else the validation loss."""
    keys = [s.key for s in scorers]
    signal = config.stop_signal if config.stop_signal != "auto" else (keys[0] if keys else VAL_LOSS)
    if signal != VAL_LOSS and signal not in keys:
        known = ", ".join([VAL_LOSS, *keys])
        raise OnewordError(f"--stop-signal {signal}: no scorer of this run gives it; this run has {known}")
    if signal == VAL_LOSS and not config.validate_every and config.stop == "auto":
        raise OnewordError("--stop auto watches val_loss here: set --validate-every above 0, or give a --score")
    return signal


def stop_rule(config: TrainConfig, signal: str) -> Plateau | None:
    """The plateau rule watching `signal`, or None when the run does not stop by itself."""
    if config.stop != "auto":
        return None
    return Plateau(patience=config.stop_patience, min_delta=config.stop_min_delta,
                   smoothing=smoothing_for(signal == VAL_LOSS), higher_is_better=not lower_is_better(signal))
