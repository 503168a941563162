"""How a run ends: the line that says why it stopped and what it kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from oneword.train.best import CheckpointRecord, best_record
from oneword.train.events import Finished, Listener
from oneword.train.history import History

if TYPE_CHECKING:
    from oneword.train.loop import Run

MAX_BAD_STEPS = 3
"""Steps in a row with a NaN or infinite loss after which training stops."""


def nothing_to_do(run: Run, on_event: Listener) -> Finished:
    """A resumed run that is already trained as far as asked: it writes nothing and says so."""
    message = (f"{run.trainable.name} is already trained to step {run.start_step} (--max-steps "
               f"{run.config.max_steps}); nothing to do: give a larger --max-steps to train it further")
    history = run.saved and History.from_state(run.saved.data["history"], run.folder, None)
    best = best_record(history.records, run.signal) if history else None
    finished = Finished("nothing", run.start_step, run.embedding_path, run.folder.root, message,
                        best_step=best.step if best else None, signal=run.signal)
    on_event(finished)
    return finished


def ending_line(reason: str, done: int, run: Run, best: CheckpointRecord | None) -> str:
    """The line a run ends with: why it stopped and what it kept."""
    if reason == "interrupted":
        kept = f"; {run.embedding_path} is the best so far, step {best.step}" if best is not None else ""
        return f"stopped at step {done}: saved {run.folder.checkpoint(done)}{kept}; continue with --resume"
    if best is not None and best.step != done:
        kept = f"the best checkpoint by {run.signal} is step {best.step}: saved it as {run.embedding_path}"
    else:
        kept = f"saved {run.embedding_path}"
    if reason == "diverged":
        return (f"stopped at step {done}: the loss was NaN or infinite {MAX_BAD_STEPS} steps in a row (step {done} "
                f"holds the last good vectors); {kept}. Try a lower --learn-rate, --clip-grad norm, or float32 "
                "(--device cpu)")
    if reason == "schedule":
        return f"the learning-rate schedule ended at step {done}: {kept}"
    if reason == "plateau":
        return f"stopped at step {done}: {run.signal} stopped improving (--stop auto); {kept}"
    return f"trained {done} steps: {kept}"
