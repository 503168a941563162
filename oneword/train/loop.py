"""Training: set a run up, then fit it step by step. One loop for whatever `Trainable` is trained, of any
registered kind (oneword.kinds: an embedding's vectors, a hypernetwork's modules, or a kind registered at run time).

Only the trainable tensors get gradients; the base model is frozen (half precision on GPUs, float32 on the
CPU); latents are cached once; every step's randomness comes from (seed, step), so a resumed run draws exactly
what an uninterrupted one would.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from oneword import kinds
from oneword.conditioning.tags import parse_tags
from oneword.extra_networks import check_prompt, folders_of, scan_folders
from oneword.generate.config import GenerateConfig
from oneword.models.base import BaseModel
from oneword.models.device import pick_device
from oneword.score import make_scorers
from oneword.timing import timed
from oneword.train.best import VAL_LOSS, CheckpointRecord, best_record
from oneword.train.config import TrainConfig
from oneword.train.dataset import Dataset, LatentCache, cache_latents, read_dataset
from oneword.train.distributed import ONE, Processes, agree, join_processes, sum_across
from oneword.train.ending import MAX_BAD_STEPS, ending_line, nothing_to_do
from oneword.train.events import Checked, Finished, Listener, Phase, Progress, Saved, Skipped, Started, Validated
from oneword.train.fits import check_picture_size
from oneword.train.groups import GroupSchedules, set_rates
from oneword.train.history import History
from oneword.train.lock import RunLock
from oneword.train.logfolder import LogFolder, LossCsv, rate_columns
from oneword.train.preview import draw_preview
from oneword.train.resume import SavedRun, resume_optimizer
from oneword.train.saving import save_checkpoint, take_over
from oneword.train.schedule import Schedule, parse_schedule
from oneword.train.scoring import checkpoint_scores
from oneword.train.signals import StopSignals
from oneword.train.speed import all_finite, make_optimizer, prepare_unet, training_dtype
from oneword.train.start import starting_point
from oneword.train.step import (  # noqa: F401  (the step's maths, imported from here by callers)
    alphas_cumprod,
    clip_gradients,
    denoising_error,
    step_batches,
    step_generators,
    training_loss,
    unet_place,
    unet_predict,
    validation_loss,
)
from oneword.train.stopping import stop_rule, stop_signal
from oneword.train.templates import fill_template, read_template
from oneword.train.trainable import Trainable
from oneword.train.validation import ValidationBatch, validation_batch

PROGRESS_EVERY = 10
"""Steps between progress events (each reads the loss back from the device)."""


@dataclass
class Run:
    """Everything a run needs, set up and checked before anything is written."""

    config: TrainConfig
    model: BaseModel
    dataset: Dataset
    latents: LatentCache
    lines: list[str]
    schedules: GroupSchedules
    """The learning-rate schedule of each of the trainable's parameter groups."""
    clip: Schedule | None
    trainable: Trainable
    optimizer: torch.optim.Optimizer
    folder: LogFolder
    embedding_path: Path
    """The trained file the run continues and leaves: EMBEDDINGS_DIR/NAME.pt or HYPERNETWORK_DIR/NAME.pt."""
    start_step: int
    total_steps: int
    preview: GenerateConfig
    preview_tags: list
    """The files of the prompt tag types the preview prompt uses (oneword.extra_networks.scan_folders), or []."""
    alphas_cumprod: torch.Tensor
    """The scheduler's cumulative alphas on the model's device, float32 (T,)."""
    validation: ValidationBatch | None = None
    scorers: list = field(default_factory=list)
    """Scorers run on every saved checkpoint (oneword.score.Scorer, given a oneword.score.context.ScoreContext)."""
    signal: str = VAL_LOSS
    """What picks the best checkpoint and what `--stop auto` watches: `val_loss` or a scorer's key."""
    notes: list[str] = field(default_factory=list)
    processes: Processes = ONE
    """The processes that train together (one unless started by `accelerate launch`)."""
    saved: SavedRun | None = None
    """The saved state `--resume` continues (its log folder, step and history), if any."""

    @property
    def steps_per_epoch(self) -> int:
        """A1111's `len(dataset) // batch // accum`, at least 1."""
        c = self.config
        return max(1, len(self.dataset.images) // c.batch_size // c.grad_accum)


def setup(config: TrainConfig, model: BaseModel, device: str = "auto", scorers: list | None = None) -> Run:
    """Check the settings and the data, load the embedding, cache latents: a Run ready to fit (nothing written yet).

    `scorers` replace what `config.score` asks for (the benchmarks pass the toy judge this way).
    """
    config.check()
    name = config.name
    lines = read_template(config.template)
    native = int(model.vae.config.sample_size)
    size = None if config.keep_size else (config.width or native, config.height or native)
    with timed("reading the data"):
        dataset = read_dataset(config.data, size, alpha_weight=config.alpha_weight)
    clip = None if config.clip_grad == "none" else parse_schedule(config.clip_grad_value, config.max_steps,
                                                                  "--clip-grad-value")
    check_picture_size(model, {image.size for image in dataset.images}, config.batch_size)

    processes = join_processes(device)
    target = processes.device(pick_device(device))
    with timed("model placement"):
        model.to(target, training_dtype(target, config.half_precision))
        for module in model.modules():
            module.requires_grad_(False).eval()
        prepare_unet(model, config)
    with timed("latent caching"):
        latents = cache_latents(model, dataset.images, config.latent_sampling, config.seed)
        model.vae.to("cpu")  # no VAE work per step: it leaves the accelerator after caching

    with timed("starting point"):
        begin = starting_point(config, model, name, target)
    trainable, path, start, saved = begin.trainable, begin.path, begin.step, begin.saved
    groups = trainable.groups(config.learn_rate)
    schedules = GroupSchedules.parse(groups, config.max_steps)
    optimizer = make_optimizer(groups, schedules.at(0), config, target)
    notes = [f"skipped {s}" for s in dataset.skipped]
    if config.resume and (note := resume_optimizer(optimizer, trainable, start, saved, path)):
        notes.append(note)
    first = dataset.images[0].caption
    preview = GenerateConfig(
        prompt=config.preview_prompt or fill_template(lines[0], name, first, random.Random(0)),
        negative=config.preview_negative, seed=config.preview_seed, steps=config.preview_steps,
        cfg=config.preview_cfg, sampler=config.preview_sampler,
        width=size[0] if size else None, height=size[1] if size else None,
    )
    notes += check_prompt(preview.prompt)  # a malformed tag is refused here, before anything is written
    preview_tags = scan_folders(folders_of(config)) if parse_tags(preview.prompt)[1] else []
    if scorers is None:
        with timed("scorers"):
            scorers = make_scorers(config.score, config.clip, config.score_samples, config.seed, model)
    signal = stop_signal(config, scorers)
    alphas = alphas_cumprod(model)
    validation = None
    if config.validate_every:
        with timed("validation set-up"):
            validation = validation_batch([m.shape for m in latents.mean], [im.caption for im in dataset.images],
                                          lines, name, len(alphas), config.validation_size, config.seed)
    folder = saved.folder if saved else LogFolder.for_run(Path(config.log_dir), name, path.suffix, kind=trainable.kind)
    return Run(
        config=config, model=model, dataset=dataset, latents=latents, lines=lines, schedules=schedules, clip=clip,
        trainable=trainable, optimizer=optimizer, folder=folder, embedding_path=path, start_step=start,
        total_steps=min(config.max_steps, schedules.end), preview=preview, preview_tags=preview_tags,
        alphas_cumprod=alphas.to(target), validation=validation, scorers=scorers, signal=signal, notes=notes,
        processes=processes, saved=saved,
    )


def _check_point(run: Run, step: int, history: History, on_event: Listener) -> CheckpointRecord:
    """Measure a saved checkpoint: its validation loss (measured now if it was not at this step) and its scores."""
    val = history.measured(step)
    if val is None and run.validation is not None:
        on_event(Phase(step, "validating"))
        val = validation_loss(run)
        history.val.append((step, val))
    if run.scorers:
        on_event(Phase(step, "scoring"))
    scores = checkpoint_scores(run, step)
    record = CheckpointRecord(step, run.folder.checkpoint(step), val, scores)
    history.records.append(record)
    on_event(Checked(step, val, scores))
    return record


def fit(run: Run, on_event: Listener = lambda event: None, stop: Callable[[], bool] | None = None) -> Finished:
    """Train from `run.start_step` to `run.total_steps`, writing the log folder; returns how it ended.

    `stop` is asked between steps (from any thread); once it returns True the run saves and ends as Ctrl-C does.
    The main process holds the run's lock files for the whole run (a second run of the name is refused).
    """
    if not run.processes.main:
        with run.trainable.applied(run.model):
            return _fit(run, on_event, stop)
    if run.saved is None and run.start_step >= run.total_steps:
        return nothing_to_do(run, on_event)  # NAME.pt alone, trained that far already: nothing to lock or repair
    name = run.trainable.name
    with RunLock([run.embedding_path.parent / f".{name}.lock", run.folder.root / f".{name}.lock"]) as lock:
        run.notes.extend([*lock.notes, *take_over(run)])
        if run.start_step >= run.total_steps:
            return nothing_to_do(run, on_event)
        with run.trainable.applied(run.model):
            return _fit(run, on_event, stop)


def _fit(run: Run, on_event: Listener, stop: Callable[[], bool] | None = None) -> Finished:
    c, folder, processes = run.config, run.folder, run.processes
    main = processes.main  # the other processes take the same steps and decisions, and write nothing
    if main:
        folder.make()
        folder.write_settings({**c.settings(), "start_step": run.start_step, "model_name": run.model.name,
                               "model_hash": run.model.short_hash, "preview_prompt": run.preview.prompt,
                               "stop_signal_used": run.signal,
                               **({"processes": processes.world} if processes.parallel else {})})
        csv = LossCsv(folder.csv, (*rate_columns(run.schedules.names), "val_loss"))
        csv.keep_until(run.start_step)
    else:
        csv, on_event = None, lambda event: None
    history = (History.from_state(run.saved.data["history"], folder, stop_rule(run.config, run.signal)) if run.saved
               else History(plateau=stop_rule(run.config, run.signal)))
    on_event(Started(run.trainable.name, run.start_step, run.total_steps, len(run.dataset.images), folder.root,
                     run.notes, history.progress(PROGRESS_EVERY), list(history.val), list(history.records)))
    done, bad, reason = run.start_step, 0, "done"
    losses: list[torch.Tensor] = []
    clock, clock_step, reported = time.perf_counter(), done, done
    rates = (0.0,) * len(run.schedules.names)
    with StopSignals(shared=processes.parallel) as signals:
        while done < run.total_steps:
            if signals.received is not None or (stop is not None and stop()):
                reason = "interrupted"
                break
            upcoming = run.schedules.at(done)
            if upcoming is None:
                reason = "schedule"
                break
            rates, step = upcoming, done + 1
            total = _gradients(run, step, rates, signals)
            if not all_finite(total, run.trainable.parameters()):
                bad += 1
                on_event(Skipped(step, bad))
                if bad >= MAX_BAD_STEPS:
                    reason = "diverged"
                    break
                continue
            bad = 0
            clip_gradients(run, done)
            with timed("optimizer step"):
                run.optimizer.step()
            done = step
            losses.append(total)
            if done % PROGRESS_EVERY == 0 or done == run.total_steps:
                _flush(losses, done, history)
                values = [v for s, v in history.train if s > reported]
                reported = done
                rate = (done - clock_step) / max(time.perf_counter() - clock, 1e-9)
                on_event(Progress(done, run.total_steps, sum(values) / max(len(values), 1), rates[0], rate,
                                  run.schedules.named(rates)))
            if main and _after_step(run, done, rates, csv, losses, history, on_event):
                reason = "plateau"
            if processes.parallel and _decides(run, done):
                reason = "plateau" if agree(reason == "plateau", total.device) else reason
            if reason == "plateau":
                break
        else:
            if run.schedules.at(done) is None and done < c.max_steps:
                reason = "schedule"
    if not main:
        return Finished(reason, done, run.embedding_path, folder.root, ending_line(reason, done, run, None), main=False)
    return _conclude(run, reason, done, rates, csv, losses, history, on_event)


def _flush(losses: list[torch.Tensor], done: int, history: History) -> None:
    """Read the losses of the steps up to `done` back from the device into the history (and the next CSV row)."""
    values = torch.stack(losses).tolist() if losses else []
    history.train.extend(zip(range(done - len(values) + 1, done + 1), values))
    history.row_losses.extend(values)
    losses.clear()


def _gradients(run: Run, step: int, rates: tuple[float, ...], signals: StopSignals) -> torch.Tensor:
    """The gradients of optimizer step `step` in the trainable tensors (summed across processes), each group's rate
    set; returns the step's loss as a tensor on the device (not read back)."""
    c = run.config
    set_rates(run.optimizer, rates)
    gen, rng = step_generators(c.seed, step)
    run.optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=unet_place(run.model)[0])
    for indices in step_batches(run, step):
        loss = training_loss(run, indices, gen, rng) / c.grad_accum
        if loss.requires_grad or not run.processes.parallel:  # a process whose share is empty has no graph
            loss.backward()
        total += loss.detach()
    if run.processes.parallel:
        total, stop = sum_across(run.trainable.parameters(), total, signals.pending is not None)
        if stop:
            signals.received = signals.pending or signal.SIGTERM
    return total


def _decides(run: Run, done: int) -> bool:
    """Whether `--stop auto` may stop after step `done` (a measurement is due), so the processes must agree."""
    c = run.config
    if c.stop != "auto":
        return False
    measured = run.validation is not None and done % c.validate_every == 0
    return bool(measured or (c.save_every and done % c.save_every == 0))


def _after_step(run: Run, done: int, rates: tuple[float, ...], csv: LossCsv, losses: list[torch.Tensor],
                history: History, on_event: Listener) -> bool:
    """Validation, CSV row, preview and checkpoint due after step `done`; True when `--stop auto` says stop.

    The preview comes before the checkpoint: a run resumed from this checkpoint continues after it. The run's
    last checkpoint is saved by `_conclude`, with the pictures of the whole run."""
    c, folder = run.config, run.folder
    val = None
    if run.validation is not None and done % c.validate_every == 0:
        on_event(Phase(done, "validating"))
        val = validation_loss(run)
        history.val.append((done, val))
        on_event(Validated(done, val))
    if done % c.csv_every == 0 or done == run.total_steps or val is not None:
        _write_row(run, csv, done, rates, losses, history, val)
    if c.preview_every and done % c.preview_every == 0:
        on_event(Phase(done, "previewing"))
        snapshot = run.trainable.snapshot(done)
        hidden = folder.preview_embedding(done) if folder.hidden_in_previews else None
        with run.trainable.sampling():
            label = kinds.get(run.trainable.kind).preview_label
            on_event(Saved(done, draw_preview(run.model, snapshot, run.preview, folder.preview(done), hidden, label,
                                                        run.preview_tags)))
    measurement = val if run.signal == VAL_LOSS else None
    due = bool(c.save_every and done % c.save_every == 0 or (c.stop == "auto" and val is not None))
    if due:
        record = _check_point(run, done, history, on_event)
        if run.signal != VAL_LOSS:
            measurement = record.value(run.signal)
    plateau = history.plateau is not None and measurement is not None and history.plateau.add(measurement)
    if due and not plateau and done < run.total_steps:
        _flush(losses, done, history)
        on_event(Phase(done, "saving"))
        on_event(Saved(done, save_checkpoint(run, done, history, final=False)))
    return plateau


def _conclude(run: Run, reason: str, done: int, rates: tuple[float, ...], csv: LossCsv,
              losses: list[torch.Tensor], history: History, on_event: Listener) -> Finished:
    """Save the last vectors, measure them, pick the best checkpoint, write the summary and pictures."""
    _write_row(run, csv, done, rates, losses, history)  # what an early stop left since the last row
    if done > run.start_step and not any(r.step == done for r in history.records):
        _check_point(run, done, history, on_event)
    on_event(Phase(done, "saving"))
    paths = save_checkpoint(run, done, history, final=True)
    best = best_record(history.records, run.signal)
    on_event(Saved(done, paths))
    finished = Finished(reason, done, run.embedding_path, run.folder.root, ending_line(reason, done, run, best),
                        best_step=best.step if best else None, signal=run.signal, records=history.records)
    on_event(finished)
    return finished


def _write_row(run: Run, csv: LossCsv, done: int, rates: tuple[float, ...], losses: list[torch.Tensor],
               history: History, val: float | None = None) -> None:
    """A CSV row for `done` with the mean loss of the steps since the last row (none: no row), each group's rate,
    and the validation loss when one was measured at `done`."""
    _flush(losses, done, history)
    rows = history.row_losses
    if rows:
        epoch, epoch_step = divmod(done - 1, run.steps_per_epoch)
        csv.add(done, epoch, epoch_step, sum(rows) / len(rows), *rates, "" if val is None else f"{val:.7f}")
        rows.clear()


def train(config: TrainConfig, model: BaseModel, on_event: Listener = lambda event: None,
          device: str = "auto", scorers: list | None = None) -> Finished:
    """Set up and fit a run."""
    return fit(setup(config, model, device, scorers), on_event)
