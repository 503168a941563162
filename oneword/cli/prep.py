"""`oneword preprocess SRC DST`: prepare a folder of pictures for training."""

from __future__ import annotations

from pathlib import Path

import typer

from oneword.cli.root import app

MODEL_HELP = ("The base model the pictures are for (a diffusers folder, a .safetensors/.ckpt file, toy, tiny-sd1 ...): "
              "its size, the one training uses, is the default width and height.")


def _width(width: int | None, model: str | None) -> int:
    """--width, else the size --model trains on, else A1111's 512."""
    from oneword.prep.size import DEFAULT_SIZE, model_size

    if width is not None:
        return width
    return model_size(model) if model is not None else DEFAULT_SIZE


@app.command("preprocess")
def preprocess_command(
    src: Path = typer.Argument(..., help="Folder of source pictures (only read, never written)."),
    dst: Path = typer.Argument(..., help="Folder for the prepared pictures and captions (not inside SRC)."),
    model: str | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    width: int | None = typer.Option(None, help="Output width, a multiple of 8 (default: --model's size, else 512)."),
    height: int | None = typer.Option(None, help="Output height, a multiple of 8 (default: the width)."),
    crop: str = typer.Option("center", help="center, focal (faces and detail), fit (letterbox) or none."),
    flip: bool = typer.Option(False, "--flip", help="Also write a mirrored copy of each picture."),
    split: bool = typer.Option(False, "--split", help="Cut over-long pictures into overlapping tiles."),
    split_threshold: float = typer.Option(0.5, help="Split when the aspect exceeds the target's by this much."),
    overlap: float = typer.Option(0.2, help="Least overlap of neighbouring tiles, as a share of a tile."),
    caption_action: str = typer.Option("copy", help="A source's existing .txt: copy it as the caption, prepend or "
                                       "append it to the new one, or ignore it (the new caption replaces it)."),
    tagger: Path | None = typer.Option(None, help="WD14-style tagger folder (model.onnx + selected_tags.csv)."),
    general_threshold: float = typer.Option(0.35, help="Tagger: least confidence of a general tag."),
    character_threshold: float = typer.Option(0.85, help="Tagger: least confidence of a character tag."),
    exclude_tags: str = typer.Option("", help="Tagger: comma-separated tags never written."),
    focal_face: float = typer.Option(0.9, help="Focal crop: weight of faces."),
    focal_entropy: float = typer.Option(0.15, help="Focal crop: weight of the most detailed window."),
    focal_edges: float = typer.Option(0.5, help="Focal crop: weight of corner features."),
    focal_debug: bool = typer.Option(False, "--focal-debug", help="Draw each focal crop into DST/focal-debug/."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow a DST that already has files."),
    workers: int | None = typer.Option(None, help="Processes (default: one per core)."),
    max_pixels: int | None = typer.Option(None, help="Skip larger pictures (default: PIL's bomb limit, ~89 MP)."),
) -> None:
    """Crop, split, mirror and caption pictures into a training folder (A1111's Preprocess images)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from oneword.prep.captions import TaggerSettings
    from oneword.prep.crop import FocalWeights
    from oneword.prep.preprocess import PreprocessConfig, preprocess

    tagging = None
    if tagger is not None:
        tagging = TaggerSettings(tagger, general_threshold, character_threshold,
                                 [t.strip() for t in exclude_tags.split(",") if t.strip()])
    config = PreprocessConfig(
        src=src, dst=dst, width=_width(width, model), height=height, crop=crop, flip=flip, split=split,
        split_threshold=split_threshold, overlap=overlap, caption_action=caption_action, tagger=tagging,
        focal=FocalWeights(focal_face, focal_entropy, focal_edges), focal_debug=focal_debug, overwrite=overwrite,
        workers=workers, max_pixels=max_pixels,
    )
    with Progress(TextColumn("preprocess"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(done, total, prepared):
            bar.update(task, completed=done, total=total)
            if prepared.skipped:
                bar.console.print(f"skipped {prepared.source}: {prepared.skipped}", highlight=False, soft_wrap=True)

        result = preprocess(config, progress)
    typer.echo(f"{result.processed} pictures processed, {len(result.skipped)} skipped, "
               f"{len(result.written)} written to {dst}")


@app.command("check")
def check_command(
    folder: Path = typer.Argument(..., help="The dataset folder (pictures with optional .txt captions)."),
    name: str | None = typer.Option(None, help="The embedding's name: captions should not contain it."),
    model: str | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    width: int | None = typer.Option(None, help="The width preprocess would make (default: --model's size, else 512)."),
    height: int | None = typer.Option(None, help="The height preprocess would make (default: the width)."),
    notes: bool = typer.Option(True, "--notes/--no-notes", help="Also list what preprocess would do per picture."),
) -> None:
    """What is wrong with a dataset before training on it; exits 1 only for errors, not for warnings."""
    from oneword.prep.check import CheckConfig, check_dataset

    report = check_dataset(CheckConfig(folder=folder, name=name, width=_width(width, model), height=height))
    for finding in report.findings:
        if finding.level != "note" or notes:
            typer.echo(finding.line())
    typer.echo(f"{report.pictures} usable pictures, {len(report.errors)} errors, {len(report.warnings)} warnings")
    if report.errors:
        raise typer.Exit(1)
