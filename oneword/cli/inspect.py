"""`oneword inspect FILE...`: what each file is, whether it is safe, which tools load it; `--convert TOOL --out DIR`
writes what that tool needs."""

from __future__ import annotations

from pathlib import Path

import typer

from oneword.cli.root import app
from oneword.errors import OnewordError


@app.command("inspect")
def inspect_command(
    files: list[Path] = typer.Argument(..., help="Files to inspect (embeddings, hypernetworks, LoRAs, models)."),
    convert: str | None = typer.Option(None, "--convert", help="Write what a tool needs: a1111, comfyui, diffusers "
                                       "or kohya (with --out)."),
    out: Path | None = typer.Option(None, "--out", help="Folder the converted files go to."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files of the same names in --out (never "
                                   "the files being converted)."),
) -> None:
    """What each file is (embedding, hypernetwork, LoRA, LoCon, LoHa, LoKr, bundle, base model), its base
    architecture, sizes, trigger words and training metadata, whether it is safe to load (a pickle that would run
    code is never loaded), and which tools load it as it is."""
    from oneword.inspect.describe import inspect_file
    from oneword.inspect.report import report_lines

    if convert is not None and out is None:
        raise OnewordError("--convert needs --out DIR, the folder the converted files go to")
    if out is not None and convert is None:
        raise OnewordError("--out is for --convert TOOL")
    if overwrite and convert is None:
        raise OnewordError("--overwrite is for --convert TOOL --out DIR")
    found = [inspect_file(path, content=convert is not None) for path in files]
    for item in found:
        typer.echo("\n".join(report_lines(item)))
    if convert is None:
        return
    from oneword.inspect.convert import convert_files

    for item, outputs in zip(found, convert_files(found, convert, out, overwrite=overwrite), strict=True):
        if not outputs:
            typer.echo(f"{item.path}: loads in {convert} as it is; nothing written")
        for output in outputs:
            typer.echo(f"wrote {output.path}: {output.what}")
