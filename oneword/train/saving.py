"""A checkpoint saved so that a kill at any file operation leaves a state `--resume` continues exactly.

Each save of step S writes, each file atomically and in this order:
1. `NAME-S.pt` in the log folder (the word NAME-S, as A1111 names a run's checkpoints);
2. what is derived from the history: `checkpoints.csv` (and at the end `loss.png`, `previews.png`);
3. `NAME-S.pt.optim` beside the checkpoint: the optimizer state, the digest of S's weights and the history. This
   completes the pair; `--resume` continues from the latest complete pair (oneword.train.resume);
4. when S is the best checkpoint so far, `NAME.pt.optim` and `NAME.pt` (the word NAME) in the embeddings folder;
5. the older `.optim` files of the log folder are deleted (only the latest pair is needed).
A kill before 3 leaves the previous pair complete: the resumed run retrains from there and rewrites the same files.
A kill after it leaves NAME.pt behind the best: `repair_best` at the resume writes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from oneword.errors import OnewordError
from oneword.files import atomic_write, remove_temporaries
from oneword.train.best import best_record, write_summary
from oneword.train.checkpoint import optim_path, optimizer_state_bytes
from oneword.train.history import History, leave_results
from oneword.train.resume import saved_steps
from oneword.train.start import read_snapshot

if TYPE_CHECKING:
    from oneword.train.loop import Run


def save_checkpoint(run: Run, step: int, history: History, final: bool) -> list[Path]:
    """Save step `step` of `run` as above; `final` also leaves the run's pictures.
    Returns the trained files written."""
    folder, trainable, name = run.folder, run.trainable, run.trainable.name
    snapshot = trainable.snapshot(step)
    path = folder.checkpoint(step)
    trainable.save(snapshot, path, run.model, f"{name}-{step}")
    written = [path]
    if final:
        best = leave_results(history, folder, run.signal)
    else:
        best = best_record(history.records, run.signal)
        if history.records:
            write_summary(folder.summary, history.records, best)
    state = optimizer_state_bytes(trainable, snapshot, run.optimizer, {
        "model_hash": run.model.short_hash, "model_name": run.model.name, "history": history.to_state()})
    atomic_write(optim_path(path), lambda f: f.write(state))
    if best is None or best.step == step:
        atomic_write(optim_path(run.embedding_path), lambda f: f.write(state))
        trainable.save(snapshot, run.embedding_path, run.model, name)
        written.append(run.embedding_path)
    for older in saved_steps(folder):
        if older != step:
            optim_path(folder.checkpoint(older)).unlink(missing_ok=True)
    return written


def take_over(run: Run) -> list[str]:
    """What a run does once it holds its lock files, before it writes: check that no other run saved since `setup`
    read the folders, remove what a killed run left, repair NAME.pt. Returns notes for the user."""
    name = run.trainable.name
    newer = [s for s in saved_steps(run.folder) if run.saved is None or s > run.saved.step]
    if newer:  # another run saved while this one was set up, before it held the lock
        raise OnewordError(f"{run.folder.root}: another training saved step {max(newer)} of {name} while this one was "
                           "being set up; start it again")
    clean_up(run)
    if run.saved is not None and repair_best(run, History.from_state(run.saved.data["history"], run.folder, None)):
        return [f"{run.embedding_path} written again as the best checkpoint (a stopped run had left it behind)"]
    return []


def clean_up(run: Run) -> list[Path]:
    """Remove the temporary files a killed run left in its log folder and beside its trained file, and the optimizer
    states older than the one a resumed run continues."""
    folder, target = run.folder, run.embedding_path
    removed = []
    if run.saved is not None:
        for older in saved_steps(folder):
            if older != run.saved.step:
                removed.append(optim_path(folder.checkpoint(older)))
                removed[-1].unlink(missing_ok=True)
    for sub in (folder.root, folder.embeddings, folder.images, folder.image_embeddings):
        removed += remove_temporaries(sub)
    return removed + remove_temporaries(target.parent, [target.name, optim_path(target).name])


def repair_best(run: Run, history: History) -> bool:
    """Before a resumed run trains: make NAME.pt the best checkpoint of its history if a kill left it behind (or it
    was deleted); True when it was written."""
    best = best_record(history.records, run.signal)
    saved = run.saved
    if best is None or saved is None:
        return False
    digest = run.trainable.state_hash
    if best.step == saved.step:  # what the run continues from, not trained yet
        snapshot, state = run.trainable.snapshot(saved.step), optim_path(saved.folder.checkpoint(saved.step))
    else:
        try:
            snapshot, state = read_snapshot(best.path, run.trainable.kind, run.model), None
        except OnewordError:  # the best checkpoint was deleted from the log folder: NAME.pt is all that is left
            return False
    target = run.embedding_path
    try:
        current = read_snapshot(target, run.trainable.kind, run.model) if target.is_file() else None
    except OnewordError:
        current = None
    if current is not None and current.step == best.step and digest(current) == digest(snapshot):
        return False
    if state is not None:
        data = state.read_bytes()
        atomic_write(optim_path(target), lambda f: f.write(data))
    run.trainable.save(snapshot, target, run.model, run.trainable.name)
    return True
