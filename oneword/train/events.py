"""What a run reports while it goes: the CLI draws a progress bar from these, a UI could draw widgets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Started:
    """The run is set up: steps to go, where it writes."""

    name: str
    start_step: int
    total_steps: int
    images: int
    log_folder: Path
    notes: list[str]
    """Things the user should know (skipped files, a resumed optimizer state missing...)."""
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    """What a resumed run measured before this start, for its charts: the mean training loss of every few steps
    (as Progress gives it, by its last step)..."""
    val_loss: list[tuple[int, float]] = field(default_factory=list)
    """... the validation losses ..."""
    records: list = field(default_factory=list)
    """... and its checkpoints (oneword.train.best.CheckpointRecord)."""


@dataclass
class Progress:
    """After an optimizer step (sent every few steps: reading the loss back waits for the device)."""

    step: int
    total_steps: int
    loss: float
    """Mean training loss since the previous Progress."""
    learn_rate: float
    """The rate of the step (the first parameter group's)."""
    steps_per_second: float
    learn_rates: dict[str, float] = field(default_factory=dict)
    """Every parameter group's rate by name."""


@dataclass
class Validated:
    """The loss on the fixed validation batch, measured after `step` optimizer steps."""

    step: int
    val_loss: float


@dataclass
class Checked:
    """A saved checkpoint was measured: its validation loss and its scores (higher is better)."""

    step: int
    val_loss: float | None
    scores: dict[str, float]


@dataclass
class Saved:
    """A checkpoint or preview was written."""

    step: int
    paths: list[Path]


@dataclass
class Phase:
    """Work between optimizer steps begins, after `step` steps: `validating`, `previewing`, `scoring` or `saving`.
    It lasts until the next event (a UI measures each phase's duration from this, for its time left)."""

    step: int
    name: str


@dataclass
class Skipped:
    """A step whose loss or gradient was NaN or infinite: the vectors were left as they were."""

    step: int
    in_a_row: int


@dataclass
class Finished:
    """The run ended: why, after how many steps, and the embedding written."""

    reason: str
    """`done` (max steps), `schedule` (the schedule ran out), `plateau` (--stop auto), `interrupted`, `diverged`;
    `nothing` when a resumed run was already trained as far as asked (nothing was written)."""
    step: int
    embedding_path: Path
    log_folder: Path
    message: str
    best_step: int | None = None
    """The checkpoint chosen by `signal`, kept as `embedding_path` (the best so far, when interrupted)."""
    signal: str = ""
    records: list = field(default_factory=list)
    """Every checkpoint of the run with its measurements (oneword.train.best.CheckpointRecord)."""
    main: bool = True
    """False in the other processes of a data-parallel run: the main process writes and reports."""


Event = Started | Progress | Validated | Checked | Saved | Phase | Skipped | Finished
Listener = Callable[[Event], None]
