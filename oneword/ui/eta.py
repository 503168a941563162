"""A training job's time left, counting the phases between its steps: the steps still to go at the measured step
rate, plus every validation, preview, scoring and save still due at each phase's measured duration.

The steps' rate leaves the phases' time out (a checkpoint scored for minutes no longer makes the steps look slow);
a phase not measured yet counts nothing until it has run once.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field

from oneword.generate.progress import Drawing
from oneword.train.config import TrainConfig

LINES = {
    "validating": "validating step {step}",
    "previewing": "drawing the preview of step {step}",
    "scoring": "scoring step {step}",
    "saving": "saving step {step}",
}
"""What the status line says while each phase of oneword.train.loop runs."""


def phases_at(config: TrainConfig, step: int, total: int) -> list[str]:
    """The phases the loop runs after step `step` of a run to `total`, in order (oneword/train/loop.py's rules)."""
    def every(n: int | None) -> bool:
        return bool(n) and step % n == 0

    validated = every(config.validate_every)
    checkpoint = every(config.save_every) or (config.stop == "auto" and validated) or step == total
    names = ["validating"] if validated else []
    names += ["previewing"] if every(config.preview_every) else []
    if checkpoint:  # a checkpoint measures its validation loss when this step had none
        names += ["validating"] if config.validate_every and not validated else []
        names += ["scoring", "saving"]
    return names


def phases_due(config: TrainConfig, after: int, total: int) -> Counter:
    """How often each phase comes after the steps `after + 1` to `total`: `phases_at` summed, counted without a
    walk through the steps."""
    def count(n: int | None, last: int) -> int:  # multiples of n in (after, last]
        return last // n - after // n if n and last > after else 0

    last = total - 1  # the final step is counted apart: it always checkpoints
    v, p, s = config.validate_every or 0, config.preview_every or 0, config.save_every or 0
    both = count(math.lcm(v, s), last) if v and s else 0
    checkpoints = count(s, last) + (count(v, last) - both if config.stop == "auto" else 0)
    due = Counter(previewing=count(p, last), scoring=checkpoints, saving=checkpoints)
    due["validating"] = (checkpoints + (0 if config.stop == "auto" else count(v, last) - both)) if v else 0
    if total > after:
        due.update(phases_at(config, total, total))
    return +due


@dataclass
class PhaseClock:
    """Where a job's time goes, measured as its events arrive: the optimizer steps, and each phase between them."""

    step_seconds: float = 0.0
    """Time spent in optimizer steps (phases left out) ..."""
    steps_timed: int = 0
    """... for this many steps."""
    mark: float = 0.0
    """When the steps' clock last started (the run set up, a progress event, a phase ended)."""
    timed_to: int = 0
    """The step the last progress event reported."""
    phase: str = ""
    """The phase going on; empty while steps run."""
    phase_step: int = 0
    phase_since: float = 0.0
    last_phase: tuple[int, str] = (0, "")
    """(step, phase) of the last phase begun: the phases of that step before it are done."""
    durations: dict[str, list[float]] = field(default_factory=dict)
    """Each phase's measured durations, in seconds."""
    drawn: int = 0
    """Images drawn in the phase going on ..."""
    expected: dict[str, int] = field(default_factory=dict)
    """... and how many the last phase of its name drew."""
    drawing: Drawing | None = None
    """The denoising step of the batch being drawn now."""

    def copy(self) -> PhaseClock:
        """A copy, safe to read while the job goes on."""
        return dataclasses.replace(self, durations={k: list(v) for k, v in self.durations.items()},
                                   expected=dict(self.expected))

    def started(self, now: float, step: int) -> None:
        """The run is set up at `step`: the steps' clock starts."""
        self.mark, self.timed_to, self.last_phase = now, step, (step, "")

    def progressed(self, now: float, step: int) -> None:
        """A progress event: the steps since the last one are done."""
        self.end(now)
        self.step_seconds += now - self.mark
        self.steps_timed += step - self.timed_to
        self.mark, self.timed_to = now, step

    def begin(self, now: float, name: str, step: int) -> None:
        """Phase `name` begins after step `step` (ending the one going on, or pausing the steps' clock)."""
        if self.phase:
            self.end(now)
        else:
            self.step_seconds += now - self.mark
        self.phase, self.phase_step, self.phase_since, self.last_phase = name, step, now, (step, name)
        self.drawn, self.drawing = 0, None

    def end(self, now: float) -> None:
        """The phase going on (if any) is over: its duration is measured, the steps' clock goes on."""
        if not self.phase:
            return
        self.durations.setdefault(self.phase, []).append(now - self.phase_since)
        if self.drawn:
            self.expected[self.phase] = self.drawn
        self.phase, self.drawing, self.mark = "", None, now

    def drew(self, drawing: Drawing) -> None:
        """A denoising step was drawn (within a phase: its images count once their batch is done)."""
        self.drawing = drawing
        if self.phase and drawing.done:
            self.drawn += drawing.images

    def mean(self, name: str) -> float | None:
        """The mean measured duration of phase `name`, None before it ran once."""
        seen = self.durations.get(name)
        return sum(seen) / len(seen) if seen else None

    def line(self) -> str:
        """The phase going on, as the status line says it ("scoring step 120 (3/8 samples)"); empty between them."""
        if not self.phase:
            return ""
        text = LINES.get(self.phase, self.phase + " step {step}").format(step=self.phase_step)
        of = self.expected.get(self.phase)
        if self.phase == "scoring":
            return f"{text} ({self.drawn}/{of} samples)" if of else f"{text} ({self.drawn} drawn)"
        if self.drawing is not None and not self.drawing.done:
            return f"{text} (sampling step {self.drawing.step}/{self.drawing.steps})"
        return text

    def seconds_left(self, config: TrainConfig, step: int, total: int, now: float) -> float | None:
        """Time left: the steps after `step` at the steps' own rate, plus the phases still due at their measured
        durations, less what the phase going on has run; None before any step was timed."""
        if self.steps_timed <= 0 or self.step_seconds <= 0:
            return None
        at = max(step, self.last_phase[0])
        left = (total - at) * self.step_seconds / self.steps_timed
        due = phases_due(config, at, total)
        names = phases_at(config, at, total)
        begun_step, begun = self.last_phase
        if begun_step == at:  # of this step's phases, those after the last one begun
            names = names[names.index(begun) + 1:] if begun in names else []
        due.update(names)
        for name, times in due.items():
            left += times * (self.mean(name) or 0.0)
        if self.phase:
            left += self._phase_left(now)
        return left

    def _phase_left(self, now: float) -> float:
        """What the phase going on still needs: its mean duration less its time so far; for scoring, the samples
        still to draw at the rate of those drawn."""
        elapsed = now - self.phase_since
        of = self.expected.get(self.phase)
        if self.phase == "scoring" and self.drawn and of:
            return max(elapsed / self.drawn * (of - self.drawn), 0.0)
        mean = self.mean(self.phase)
        return max(mean - elapsed, 0.0) if mean is not None else 0.0
