"""`oneword train` and `oneword train-hypernetwork`: A1111's Train tab on the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from oneword.cli.root import DEFAULT_EMBEDDINGS_DIR, DEFAULT_HYPERNETWORK_DIR, DEFAULT_MODEL, MODEL_HELP, app
from oneword.train.config import HYPERNETWORK_DEFAULTS, TrainConfig

_D = TrainConfig()


def _default(name: str) -> str:
    if name in HYPERNETWORK_DEFAULTS:
        return f" \\[default: {getattr(_D, name)}; {HYPERNETWORK_DEFAULTS[name]} for a hypernetwork]"
    return f" \\[default: {getattr(_D, name)}]"


@app.command("train")
@app.command("train-hypernetwork", help="Train a hypernetwork (`train --kind hypernetwork`): writes "
             "LOG_DIR/YYYY-MM-DD/NAME/ and HYPERNETWORK_DIR/NAME.pt.")
def train_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The embedding's or hypernetwork's name (an embedding is created from "
                               "--init-text, a hypernetwork with create-hypernetwork's defaults, if it does not exist)."),
    kind: str | None = typer.Option(None, help="embedding or hypernetwork \\[default: embedding; hypernetwork for "
                                    "train-hypernetwork]."),
    data: Path | None = typer.Option(None, "--data", "-d", help="Folder of training images (.txt captions beside)."),
    model: str | None = typer.Option(None, "--model", "-m", help=MODEL_HELP + f" \\[default: {DEFAULT_MODEL}]"),
    config_file: Path | None = typer.Option(None, "--config", help="TOML file with any of these settings."),
    init_text: str | None = typer.Option(None, help="Initialization text of a new embedding." + _default("init_text")),
    vectors: int | None = typer.Option(None, help="Vectors per token of a new embedding." + _default("vectors")),
    learn_rate: str | None = typer.Option(None, help='Rate or schedule "0.005:100, 1e-3:1000, 1e-5".'
                                          + _default("learn_rate")),
    clip_grad: str | None = typer.Option(None, help="Gradient clipping: none, value or norm." + _default("clip_grad")),
    clip_grad_value: str | None = typer.Option(None, help="Clip value, or a schedule." + _default("clip_grad_value")),
    batch_size: int | None = typer.Option(None, help="Images per batch (under accelerate launch: the global batch, "
                                           "shared among the processes)." + _default("batch_size")),
    grad_accum: int | None = typer.Option(None, help="Gradient accumulation steps." + _default("grad_accum")),
    width: int | None = typer.Option(None, help="Training width (multiple of 8) \\[default: the model's size]."),
    height: int | None = typer.Option(None, help="Training height (multiple of 8) \\[default: the model's size]."),
    keep_size: bool | None = typer.Option(None, "--keep-size/--resize", help="Do not resize images \\[default: resize]."),
    max_steps: int | None = typer.Option(None, help="Steps to train." + _default("max_steps")),
    save_every: int | None = typer.Option(None, help="Save a copy every N steps (0: never)." + _default("save_every")),
    preview_every: int | None = typer.Option(None, help="Preview every N steps (0: never)." + _default("preview_every")),
    template: str | None = typer.Option(None, help="Prompt template: a shipped name or a file." + _default("template")),
    shuffle_tags: bool | None = typer.Option(None, "--shuffle-tags/--keep-tag-order",
                                             help="Shuffle caption tags \\[default: keep order]."),
    tag_dropout: float | None = typer.Option(None, help="Drop each tag with this probability." + _default("tag_dropout")),
    caption_dropout: float | None = typer.Option(None, help="Hypernetworks: train this share of prompts as the empty "
                                                 "prompt." + _default("caption_dropout")),
    latent_sampling: str | None = typer.Option(None, help="once, deterministic or random." + _default("latent_sampling")),
    alpha_weight: bool | None = typer.Option(None, "--alpha-weight/--no-alpha-weight",
                                             help="PNG alpha as loss weight \\[default: off]."),
    seed: int | None = typer.Option(None, help="Seed of the whole run." + _default("seed")),
    log_dir: Path | None = typer.Option(None, help="Log folder root." + _default("log_dir")),
    embeddings_dir: Path | None = typer.Option(None, help=f"Embeddings folder. \\[default: {DEFAULT_EMBEDDINGS_DIR}]"),
    hypernetwork_dir: Path | None = typer.Option(
        None, help=f"Hypernetworks folder. \\[default: {DEFAULT_HYPERNETWORK_DIR}]"),
    preview_prompt: str | None = typer.Option(None, help="Preview prompt \\[default: the template's first line]."),
    preview_seed: int | None = typer.Option(None, help="Preview seed." + _default("preview_seed")),
    csv_every: int | None = typer.Option(None, help="Loss CSV row every N steps." + _default("csv_every")),
    validate_every: int | None = typer.Option(
        None, help="Loss on a fixed validation batch every N steps, 0: never." + _default("validate_every")),
    validation_size: int | None = typer.Option(
        None, help="Samples in the validation batch." + _default("validation_size")),
    stop: str | None = typer.Option(None, help="max: run to --max-steps; auto: stop when the signal plateaus."
                                    + _default("stop")),
    stop_signal: str | None = typer.Option(None, help="val_loss, a score name, or auto (the scorer's score, else "
                                           "val_loss)." + _default("stop_signal")),
    stop_patience: int | None = typer.Option(None, help="--stop auto: measurements without improvement."
                                             + _default("stop_patience")),
    stop_min_delta: float | None = typer.Option(None, help="--stop auto: smallest relative improvement."
                                                + _default("stop_min_delta")),
    score: str | None = typer.Option(None, help="Checkpoint scorer: auto, none, features, clip, judge:CONCEPT."
                                     + _default("score")),
    clip: Path | None = typer.Option(None, help="Local CLIP model folder for --score clip (auto uses it)."),
    score_samples: int | None = typer.Option(None, help="Samples per checkpoint for scoring."
                                             + _default("score_samples")),
    gradient_checkpointing: bool | None = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing",
                                                       help="Less memory, more time \\[default: off]."),
    half_precision: bool | None = typer.Option(None, "--half-precision/--full-precision",
                                               help="Frozen weights bf16/fp16 on GPUs (the CPU uses float32) "
                                               "\\[default: half]."),
    channels_last: bool | None = typer.Option(None, "--channels-last/--no-channels-last",
                                              help="UNet in channels-last layout \\[default: on]."),
    flash_attention: bool | None = typer.Option(None, "--flash-attention/--classic-attention",
                                                help="Scaled-dot-product (flash) attention \\[default: flash]."),
    compile: bool | None = typer.Option(None, "--compile/--no-compile",
                                        help="torch.compile the UNet (minutes to compile first; meant for long GPU runs) "
                                        "\\[default: off]."),
    fused_optimizer: bool | None = typer.Option(None, "--fused-optimizer/--no-fused-optimizer",
                                                help="AdamW's fused kernel \\[default: on]."),
    cache_conditioning: bool | None = typer.Option(None, "--cache-conditioning/--no-cache-conditioning",
                                                   help="Hypernetworks: text conditioning computed once per prompt "
                                                   "\\[default: on]."),
    resume: bool = typer.Option(False, "--resume", help="Continue an embedding that has steps, with its optimizer state."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
) -> None:
    """Train a Textual Inversion embedding; writes LOG_DIR/YYYY-MM-DD/NAME/ and EMBEDDINGS_DIR/NAME.pt."""
    from oneword import load_base
    from oneword.train.config import read_config_file
    from oneword.train.loop import train

    given = {k: v for k, v in locals().items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    settings = read_config_file(config_file) if config_file else {}
    settings.update({k: v for k, v in given.items() if v is not None and k != "resume"})
    settings["resume"] = resume or bool(settings.get("resume", False))
    if ctx.info_name == "train-hypernetwork":
        settings.setdefault("kind", "hypernetwork")
    if settings.get("kind") == "hypernetwork":
        for key, value in HYPERNETWORK_DEFAULTS.items():
            settings.setdefault(key, value)
    settings.setdefault("model", DEFAULT_MODEL)
    settings.setdefault("embeddings_dir", Path(DEFAULT_EMBEDDINGS_DIR))
    settings.setdefault("hypernetwork_dir", Path(DEFAULT_HYPERNETWORK_DIR))
    if "data" not in settings:
        from oneword.errors import OnewordError

        raise OnewordError("--data is missing: give the folder of training images")
    config = TrainConfig(**settings)
    config.check()  # before the model loads: a bad option fails at once
    finished = train(config, load_base(config.model), ProgressView(), device=device)
    if not finished.main:
        return  # another process of `accelerate launch`: the main one reports
    print_summary(finished)
    typer.echo(finished.message)
    if finished.reason != "nothing":
        typer.echo(f"log folder: {finished.log_folder}")


def print_summary(finished) -> None:
    """The checkpoints' table (step, validation loss, scores), the chosen one marked."""
    from rich.console import Console
    from rich.table import Table

    from oneword.train.best import summary_table

    if not finished.records:
        return
    best = next((r for r in finished.records if r.step == finished.best_step), None)
    header, rows = summary_table(finished.records, best)
    table = Table(title=f"checkpoints (best by {finished.signal})")
    for name in header:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*row, style="bold" if row[-1] else None)
    Console().print(table)


class ProgressView:
    """Training events drawn as a Rich progress bar: step, it/s, ETA, smoothed loss, validation loss, learning rate."""

    def __init__(self) -> None:
        self.progress = None
        self.task = None
        self.smoothed: float | None = None

    def __call__(self, event: object) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from oneword.train import events

        if isinstance(event, events.Started):
            for note in event.notes:
                typer.echo(note, err=True)
            typer.echo(f"training {event.name} on {event.images} images, steps {event.start_step} -> "
                       f"{event.total_steps}; log folder {event.log_folder}", err=True)
            self.progress = Progress(
                TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                TextColumn("{task.fields[rate]:.2f} it/s"), TimeRemainingColumn(),
                TextColumn("loss {task.fields[loss]} val {task.fields[val]} lr {task.fields[lr]}"), transient=False,
            )
            self.task = self.progress.add_task("train", total=event.total_steps, completed=event.start_step,
                                               rate=0.0, loss="-", val="-", lr="-")
            self.progress.start()
        elif isinstance(event, events.Progress) and self.progress is not None:
            self.smoothed = event.loss if self.smoothed is None else 0.9 * self.smoothed + 0.1 * event.loss
            self.progress.update(self.task, completed=event.step, rate=event.steps_per_second,
                                 loss=f"{self.smoothed:.4f}", lr=f"{event.learn_rate:g}")
        elif isinstance(event, events.Validated) and self.progress is not None:
            self.progress.update(self.task, val=f"{event.val_loss:.4f}")
        elif isinstance(event, events.Checked) and self.progress is not None and event.scores:
            scores = ", ".join(f"{k} {v:.3f}" for k, v in event.scores.items())
            self.progress.console.print(f"checkpoint {event.step}: {scores}")
        elif isinstance(event, events.Skipped):
            typer.echo(f"step {event.step}: loss or gradient is NaN/inf, step skipped ({event.in_a_row} in a row)",
                       err=True)
        elif isinstance(event, events.Finished) and self.progress is not None:
            self.progress.stop()
            self.progress = None
