"""`oneword train` and `oneword train-hypernetwork`: A1111's Train tab on the command line, an option for each
TrainConfig field."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer

from oneword import kinds
from oneword.cli.options import field_options, takes
from oneword.cli.root import app
from oneword.errors import OnewordError
from oneword.fielddocs import field_docs
from oneword.train.config import TrainConfig, read_config_file

DECLARED = {
    "data": ("--data", "-d"),
    "model": ("--model", "-m"),
    "keep_size": ("--keep-size/--resize",),
    "shuffle_tags": ("--shuffle-tags/--keep-tag-order",),
    "half_precision": ("--half-precision/--full-precision",),
    "flash_attention": ("--flash-attention/--classic-attention",),
    "resume": ("--resume",),
    "train_text_encoder": ("--train-text-encoder/--no-train-text-encoder",),
}
"""Option names other than `--field-name` (`--field-name/--no-field-name` for a boolean): short flags, pairs."""
NOT_OPTIONS = ("name", "extra")
"""Fields that are no option: NAME is the argument, `extra` is for callers of the library."""
_FIRST, *_OTHERS = (kinds.get(name) for name in kinds.names())
_SHOWN = {"True": "on", "False": "off"}
SHOWN_DEFAULTS = {
    "kind": "; ".join([_FIRST.name, *(f"{k.name} for {k.command}" for k in _OTHERS if k.command)]),
    **{field: "; ".join([*([str(_FIRST.defaults[field])] if field in _FIRST.defaults else []),
                         *(f"{_SHOWN.get(str(k.defaults[field]), k.defaults[field])} for a {k.name}"
                           for k in _OTHERS if field in k.defaults)])
       for field in dict.fromkeys(f for k in (_FIRST, *_OTHERS) for f in k.defaults)},
    "preview_every": "500; with --stop auto, the checkpoints' interval",
}
"""Defaults as help shows them where the kind decides, and where --stop decides."""
PARAMETERS = [
    inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
    inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                      default=typer.Argument(..., help=field_docs(TrainConfig)["name"])),
    inspect.Parameter("config_file", inspect.Parameter.KEYWORD_ONLY, annotation=Path | None, default=typer.Option(
        None, "--config", help="TOML file with any of these settings (the options given here win over it).")),
    *field_options(TrainConfig, declared=DECLARED, defaults=SHOWN_DEFAULTS, exclude=NOT_OPTIONS),
    inspect.Parameter("device", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                      default=typer.Option("auto", help="auto, cpu or cuda.")),
]
"""What `oneword train` takes: NAME, --config, a TrainConfig field each, --device."""


def _kind_commands(command):
    """`train` and each registered kind's own command (`train-hypernetwork`), all one command."""
    for kind in (kinds.get(name) for name in kinds.names()):
        if kind.command:
            command = app.command(kind.command, help=kind.command_help)(command)
    return app.command("train")(command)


@_kind_commands
@takes(PARAMETERS)
def train_command(ctx: typer.Context, name: str, config_file: Path | None, device: str, **given: Any) -> None:
    """Train a Textual Inversion embedding; writes LOG_DIR/YYYY-MM-DD/NAME/ and EMBEDDINGS_DIR/NAME.pt."""
    from oneword import load_base
    from oneword.train.loop import train

    config = command_line_config(ctx.info_name, name, config_file, given)
    config.check()  # before the model loads: a bad option fails at once
    model = load_base(config.model, prediction_type=config.prediction_type)
    finished = train(config, model, ProgressView(), device=device)
    if not finished.main:
        return  # another process of `accelerate launch`: the main one reports
    print_summary(finished)
    typer.echo(finished.message)
    if finished.reason != "nothing":
        typer.echo(f"log folder: {finished.log_folder}")


def command_line_config(command: str | None, name: str, config_file: Path | None, given: dict[str, Any]
                        ) -> TrainConfig:
    """The TrainConfig of a command line: the TOML file's settings, the options given over them, the rest the
    kind's defaults (a kind's own command, `train-hypernetwork`, trains that kind unless told otherwise)."""
    settings = read_config_file(config_file) if config_file else {}
    settings.update({k: v for k, v in given.items() if v is not None})
    settings["name"] = name
    trained = [k for k in kinds.names() if kinds.get(k).command == command]
    if trained and settings.setdefault("kind", trained[0]) != trained[0]:
        source = "--kind" if given.get("kind") is not None else f"--config {config_file}: kind"
        raise OnewordError(f"{source} {settings['kind']}: `oneword {command}` trains a {trained[0]}; train "
                           f"{_article(settings['kind'])} {settings['kind']} with `oneword train NAME --kind "
                           f"{settings['kind']}`")
    if "data" not in settings:
        raise OnewordError("--data is missing: give the folder of training images")
    return TrainConfig(**settings)


def _article(word: object) -> str:
    return "an" if str(word)[:1].lower() in "aeiou" else "a"


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
