"""When more steps stop helping: a plateau rule on a series of validation measurements.

The rule, with its parameters (defaults in brackets):
- the series is smoothed with an exponential moving average (`smoothing` [0.5] of the previous smoothed value;
  `smoothing_for` gives none to the validation loss, see there);
- a measurement *improves* when the smoothed value beats the best smoothed value so far by more than
  `min_delta` [1%] of that best (lower is better for a loss; `higher_is_better` for a score);
- the run stops after `patience` [3] measurements in a row without an improvement, but never before
  `min_measurements` [4] measurements, so that the noisy start cannot stop it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Plateau:
    patience: int = 3
    min_delta: float = 0.01
    smoothing: float = 0.5
    min_measurements: int = 4
    higher_is_better: bool = False
    smoothed: list[float] = field(default_factory=list)
    best: float | None = None
    best_index: int | None = None
    since_best: int = 0

    def add(self, value: float) -> bool:
        """Record one measurement; True when the series has plateaued (stop now)."""
        previous = self.smoothed[-1] if self.smoothed else value
        current = self.smoothing * previous + (1 - self.smoothing) * value
        self.smoothed.append(current)
        sign = 1.0 if self.higher_is_better else -1.0
        if self.best is None or sign * (current - self.best) > self.min_delta * abs(self.best):
            self.best, self.best_index, self.since_best = current, len(self.smoothed) - 1, 0
        else:
            self.since_best += 1
        return len(self.smoothed) >= self.min_measurements and self.since_best >= self.patience


def smoothing_for(signal_is_val_loss: bool) -> float:
    """The validation loss is measured on one fixed batch, so it changes only when the vectors do and is not
    smoothed (a moving average would keep it "improving" for a few measurements after it has stopped); a score is
    measured on a few random samples and is noisy. On toy-world runs it was not tuned on, patience 3 without
    smoothing stopped earlier than patience 4 with it and chose checkpoints closer to the best (docs/benchmarks.md)."""
    return 0.0 if signal_is_val_loss else Plateau.smoothing
