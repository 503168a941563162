"""`oneword generate` and `oneword compare`."""

from __future__ import annotations

from pathlib import Path

import typer

from oneword.cli.root import (
    DEFAULT_EMBEDDINGS_DIR,
    DEFAULT_HYPERNETWORK_DIR,
    DEFAULT_LORA_DIR,
    DEFAULT_MODEL,
    LORA_DIR_HELP,
    MODEL_HELP,
    app,
)
from oneword.errors import OnewordError, gather
from oneword.outputs import folder_problem


def _load(model: str, prediction_type: str | None, embeddings_dir: Path):
    from oneword import load_base
    from oneword.embeddings.library import scan_embeddings
    from oneword.models.device import pick_device, place

    if embeddings_dir.exists() and not embeddings_dir.is_dir():
        raise OnewordError(f"--embeddings-dir {embeddings_dir}: is a file, not a folder")
    base = place(load_base(model, prediction_type=prediction_type), pick_device())
    library = scan_embeddings(embeddings_dir, base) if embeddings_dir.is_dir() else None
    if library and library.skipped:
        typer.echo(
            f"embeddings: {len(library.loaded)} loaded, {len(library.skipped)} skipped "
            f"(`oneword embeddings list` shows why)",
            err=True,
        )
    return base, (library.loaded if library else {}), library


def _tag_libraries(prompt: str, hypernetwork_dir: Path, lora_dir: Path) -> list:
    """The files of every prompt tag type's folder; a malformed tag fails here, before the model loads, and a tag
    of an unknown type is named on stderr."""
    from oneword.extra_networks import check_prompt, scan_folders

    for note in check_prompt(prompt):
        typer.echo(f"note: {note}", err=True)
    return scan_folders({"hypernet": hypernetwork_dir, "lora": lora_dir})


def _tell_notes(libraries: list) -> None:
    """What the prompt's tags left out (a LoRA not found or unreadable, layers that do not fit), on stderr."""
    from oneword.extra_networks import library_notes

    for note in library_notes(libraries):
        typer.echo(f"note: {note}", err=True)


@app.command("generate")
def generate_command(
    prompt: str = typer.Option(..., "--prompt", "-p", help="Prompt in A1111 syntax; embeddings by file stem, "
                                                           "<hypernet:NAME:STRENGTH> applies a hypernetwork, "
                                                           "<lora:NAME:WEIGHT> a LoRA."),
    negative: str = typer.Option("", "--negative", "-n", help="Negative prompt."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=MODEL_HELP),
    embeddings_dir: Path = typer.Option(Path(DEFAULT_EMBEDDINGS_DIR), "--embeddings-dir", help="Embeddings folder."),
    hypernetwork_dir: Path = typer.Option(Path(DEFAULT_HYPERNETWORK_DIR), "--hypernetwork-dir",
                                          help="Hypernetworks folder (files by stem, subfolders too)."),
    lora_dir: Path = typer.Option(Path(DEFAULT_LORA_DIR), "--lora-dir", help=LORA_DIR_HELP),
    seed: int = typer.Option(-1, help="Seed of the first image (image i uses seed + i); -1 for random."),
    steps: int = typer.Option(20, help="Sampling steps."),
    cfg: float = typer.Option(7.0, help="Classifier-free guidance scale."),
    sampler: str = typer.Option("euler_a", help="euler_a, euler, ddim, dpmpp_2m or dpmpp_2m_karras."),
    width: int | None = typer.Option(None, help="Width in pixels (multiple of 8); default: the model's size."),
    height: int | None = typer.Option(None, help="Height in pixels (multiple of 8); default: the model's size."),
    batch: int = typer.Option(1, help="Number of images."),
    out: Path = typer.Option(Path("outputs/txt2img"), help="Folder for the PNGs (A1111 names NNNNN-SEED.png)."),
    prediction_type: str | None = typer.Option(
        None, help="Override the model's prediction type: epsilon or v_prediction (SD 2.x 768 files)."
    ),
) -> None:
    """Draw images from a prompt; PNGs carry A1111's `parameters` text."""
    from oneword.generate.config import GenerateConfig
    from oneword.generate.txt2img import generate, save_images

    config = GenerateConfig(prompt=prompt, negative=negative, seed=seed, steps=steps, cfg=cfg, sampler=sampler,
                            width=width, height=height, batch=batch)
    libraries = _tag_libraries(prompt, hypernetwork_dir, lora_dir)
    gather([p for p in (folder_problem("--out", out),) if p])
    from oneword.embeddings.missing import missing_embedding_notes

    base, embeddings, library = _load(model, prediction_type, embeddings_dir)
    for note in missing_embedding_notes([prompt, negative], library, base.encoders[0].tokenizer):
        typer.echo(f"note: {note}", err=True)
    images = generate(base, config, embeddings, *libraries)
    _tell_notes(libraries)
    for path in save_images(images, out):
        typer.echo(str(path))


@app.command("compare")
def compare_command(
    files: list[Path] = typer.Argument(..., help="Checkpoints of one kind to compare: embeddings (NAME-500.pt "
                                                 "NAME-1000.pt), hypernetworks, LoRAs or LoRAs with a bundled word."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="Prompt; with embeddings it uses --word."),
    word: str | None = typer.Option(None, "--word", "-w", help="The word in the prompt that each file stands for: "
                                    "needed for embeddings; for a bundled word, the word the prompt uses instead of "
                                    "the file's; not for LoRAs and hypernetworks, which change the model."),
    negative: str = typer.Option("", "--negative", "-n", help="Negative prompt."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=MODEL_HELP),
    embeddings_dir: Path = typer.Option(
        Path(DEFAULT_EMBEDDINGS_DIR), "--embeddings-dir", help="Other embeddings the prompt may use."
    ),
    hypernetwork_dir: Path = typer.Option(Path(DEFAULT_HYPERNETWORK_DIR), "--hypernetwork-dir",
                                          help="Hypernetworks folder, for <hypernet:NAME:STRENGTH> in the prompt."),
    lora_dir: Path = typer.Option(Path(DEFAULT_LORA_DIR), "--lora-dir", help=LORA_DIR_HELP),
    seed: int = typer.Option(-1, help="Seed of the first row; -1 for random."),
    steps: int = typer.Option(20, help="Sampling steps."),
    cfg: float = typer.Option(7.0, help="Classifier-free guidance scale."),
    sampler: str = typer.Option("euler_a", help="euler_a, euler, ddim, dpmpp_2m or dpmpp_2m_karras."),
    width: int | None = typer.Option(None, help="Width in pixels; default: the model's size."),
    height: int | None = typer.Option(None, help="Height in pixels; default: the model's size."),
    batch: int = typer.Option(1, help="Rows: seeds seed, seed+1, ..."),
    out: Path = typer.Option(Path("outputs/compare.png"), help="Grid PNG to write."),
    prediction_type: str | None = typer.Option(None, help="Override the prediction type."),
) -> None:
    """One labelled grid: the prompt without the add-on, then with each file, with the same seeds."""
    from oneword.generate.compare import compare_checkpoints
    from oneword.generate.config import GenerateConfig
    from oneword.generate.pnginfo import save_png
    from oneword.inspect.checkpoints import read_checkpoints

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise OnewordError(f"no such checkpoint file: {', '.join(missing)}")
    checkpoints = read_checkpoints(files, word)
    config = GenerateConfig(prompt=prompt, negative=negative, seed=seed, steps=steps, cfg=cfg, sampler=sampler,
                            width=width, height=height, batch=batch)
    if out.is_dir():
        raise OnewordError(f"--out {out}: is a folder; give the grid's file name, e.g. {out / 'compare.png'}")
    libraries = _tag_libraries(prompt, hypernetwork_dir, lora_dir)
    gather([p for p in (folder_problem("--out", out.parent),) if p])
    base, embeddings, _ = _load(model, prediction_type, embeddings_dir)
    result = compare_checkpoints(base, config, checkpoints, embeddings, libraries)
    _tell_notes(libraries)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(result.grid, out, result.parameters)
    typer.echo(str(out))
