"""The training job of a UI server: one at a time, run in a background thread that owns it, its progress kept
from the loop's events so that any page (a refresh, a second tab) can read it back; closing a page stops nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from oneword.errors import OnewordError
from oneword.generate.progress import Drawing, watching
from oneword.train import events
from oneword.train.best import VAL_LOSS, CheckpointRecord, best_record
from oneword.train.config import TrainConfig
from oneword.train.logfolder import LogFolder
from oneword.ui.eta import PhaseClock

log = logging.getLogger(__name__)

SMOOTHING = 0.9
"""Weight of the past in the smoothed training loss (the command line's progress bar uses the same)."""


@dataclass
class JobState:
    """What a page shows of a job: a copy, safe to read while the job goes on."""

    status: str = "idle"
    """idle, loading, running, stopping, finished or failed."""
    name: str = ""
    kind: str = "embedding"
    step: int = 0
    start_step: int = 0
    total_steps: int = 0
    steps_per_second: float = 0.0
    learn_rate: float = 0.0
    learn_rates: dict[str, float] = field(default_factory=dict)
    """Each parameter group's rate by name (the first one is `learn_rate`)."""
    train_loss: list[tuple[int, float, float]] = field(default_factory=list)
    """(step, raw loss, smoothed loss): raw is the mean since the previous progress event."""
    val_loss: list[tuple[int, float]] = field(default_factory=list)
    scores: list[tuple[int, str, float]] = field(default_factory=list)
    records: list[CheckpointRecord] = field(default_factory=list)
    previews: list[tuple[int, Path]] = field(default_factory=list)
    best_step: int | None = None
    signal: str = ""
    log_folder: Path | None = None
    message: str = ""
    notes: list[str] = field(default_factory=list)
    version: int = 0
    """Goes up with every change, so a page redraws only what changed."""
    started_at: float = 0.0
    config: TrainConfig | None = None
    """The run's settings: when it validates, previews and saves (for the time left)."""
    clock: PhaseClock = field(default_factory=PhaseClock)
    """The phase going on and where the time went (oneword.ui.eta)."""

    @property
    def active(self) -> bool:
        """The job still holds the trainer."""
        return self.status in ("loading", "running", "stopping")

    @property
    def phase_line(self) -> str:
        """What the run does between its steps now ("scoring step 120 (3/8 samples)"); empty while steps run."""
        return self.clock.line() if self.active else ""

    @property
    def eta_seconds(self) -> float | None:
        """Time left: the steps at their own rate, plus the validations, previews, scorings and saves still due
        at their measured durations."""
        if self.status != "running" or self.steps_per_second <= 0 or self.config is None:  # no step timed yet
            return None
        return self.clock.seconds_left(self.config, self.step, self.total_steps, time.monotonic())


class TrainingJob:
    """One training run in a background thread: its state, and a stop request the loop reads between steps."""

    def __init__(self, config: TrainConfig, device: str, load: Callable[..., object]) -> None:
        self.config = config
        self.device = device
        self._load = load
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._set_up = threading.Event()
        self._state = JobState(status="loading", name=config.name, kind=config.kind, total_steps=config.max_steps,
                               signal=config.stop_signal, started_at=time.time(), config=config)
        self._thread = threading.Thread(target=self._work, name=f"train-{config.name}", daemon=True)

    def start(self) -> None:
        """Begin training in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to save and end after the current step (as Ctrl-C does on the command line)."""
        self._stop.set()
        self._change(lambda s: setattr(s, "status", "stopping") if s.status in ("loading", "running") else None)

    def wait_set_up(self) -> JobState:
        """Wait until the model is loaded and the run set up (or the job failed doing it); the state then."""
        self._set_up.wait()
        return self.state()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (tests and shutdown)."""
        self._thread.join(timeout)

    def state(self) -> JobState:
        """A copy of the job's state."""
        with self._lock:
            s = self._state
            return replace(s, train_loss=list(s.train_loss), val_loss=list(s.val_loss), scores=list(s.scores),
                           records=list(s.records), previews=list(s.previews), notes=list(s.notes),
                           learn_rates=dict(s.learn_rates), clock=s.clock.copy())

    def _change(self, edit: Callable[[JobState], object]) -> None:
        with self._lock:
            edit(self._state)
            self._state.version += 1

    def _work(self) -> None:
        from oneword.train.loop import fit, setup

        try:
            model = self._load(self.config.model, prediction_type=self.config.prediction_type)
            run = setup(self.config, model, self.device)
            if not self._stop.is_set():
                self._change(lambda s: setattr(s, "status", "running"))
            self._set_up.set()
            with watching(self._on_drawing):  # the previews' and the scorers' samples, step by step
                fit(run, self._on_event, stop=self._stop.is_set)
        except OnewordError as error:
            self._fail(str(error))
        except Exception as error:  # the thread's last line of defence: the page shows it instead of hanging
            log.exception("training %s failed", self.config.name)
            self._fail(f"{type(error).__name__}: {error}")

    def _fail(self, message: str) -> None:
        def edit(s: JobState) -> None:
            s.status, s.message = "failed", message
        self._change(edit)
        self._set_up.set()

    def _on_event(self, event: events.Event) -> None:
        now = time.monotonic()
        self._change(lambda s: _apply(s, event, now))

    def _on_drawing(self, drawing: Drawing) -> None:
        self._change(lambda s: s.clock.drew(drawing))


def _apply(s: JobState, event: events.Event, now: float | None = None) -> None:
    """Fold one training event, arrived at `now` (time.monotonic, by default now), into the state."""
    now = time.monotonic() if now is None else now
    if isinstance(event, events.Phase):
        s.clock.begin(now, event.name, event.step)
        s.step = max(s.step, event.step)  # the steps done, also between two progress events
    elif isinstance(event, events.Progress):
        s.clock.progressed(now, event.step)
    elif isinstance(event, events.Started):
        s.clock.started(now, event.start_step)
    else:
        s.clock.end(now)  # every other event closes the phase going on
    if isinstance(event, events.Started):
        s.start_step, s.step, s.total_steps = event.start_step, event.start_step, event.total_steps
        s.log_folder, s.notes = event.log_folder, list(event.notes)
        for step, loss in event.train_loss:  # a resumed run's history: the charts show the whole run
            _add_loss(s, step, loss)
        s.val_loss.extend(event.val_loss)
        for record in event.records:
            _add_record(s, record.step, record.val_loss, record.scores)
        s.previews.extend(LogFolder(event.log_folder, event.name).previews(until=event.start_step))  # drawn before
    elif isinstance(event, events.Progress):
        _add_loss(s, event.step, event.loss)
        s.step, s.steps_per_second, s.learn_rate = event.step, event.steps_per_second, event.learn_rate
        s.learn_rates = dict(event.learn_rates)
    elif isinstance(event, events.Validated):
        s.val_loss.append((event.step, event.val_loss))
    elif isinstance(event, events.Checked):
        _add_record(s, event.step, event.val_loss, event.scores)
    elif isinstance(event, events.Saved):
        s.previews.extend((event.step, p) for p in event.paths if p.parent.name == "images" and p.suffix == ".png")
    elif isinstance(event, events.Finished):
        s.status, s.step, s.message = "finished", event.step, event.message
        s.best_step, s.signal, s.records = event.best_step, event.signal, list(event.records)


def _add_loss(s: JobState, step: int, loss: float) -> None:
    smoothed = loss if not s.train_loss else SMOOTHING * s.train_loss[-1][2] + (1 - SMOOTHING) * loss
    s.train_loss.append((step, loss, smoothed))


def _add_record(s: JobState, step: int, val_loss: float | None, scores: dict[str, float]) -> None:
    s.scores.extend((step, key, value) for key, value in scores.items())
    s.records.append(CheckpointRecord(step, Path(), val_loss, dict(scores)))
    best = best_record(s.records, _signal(s))
    s.best_step = best.step if best else None


def _signal(s: JobState) -> str:
    """What ranks checkpoints while the run goes (the loop's rule: the first score, else the validation loss)."""
    if s.signal not in ("", "auto"):
        return s.signal
    first_scores = s.records[0].scores if s.records else {}
    return next(iter(first_scores), VAL_LOSS)


class Jobs:
    """The server's trainer: at most one job runs; the last one stays readable after it ends."""

    def __init__(self, load: Callable[..., object]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self.current: TrainingJob | None = None

    def start(self, config: TrainConfig, device: str = "auto") -> TrainingJob:
        """Start `config` unless a job is running (then say so)."""
        with self._lock:
            if self.current is not None and self.current.state().active:
                raise OnewordError(f"a training is already running ({self.current.config.name}): stop it first")
            self.current = TrainingJob(config, device, self._load)
            self.current.start()
            return self.current

    def state(self) -> JobState:
        """The current (or last) job's state; an idle one when there has been none."""
        job = self.current
        return job.state() if job is not None else JobState()

    def stop(self) -> bool:
        """Ask the running job to stop; False when none runs."""
        job = self.current
        if job is None or not job.state().active:
            return False
        job.stop()
        return True
