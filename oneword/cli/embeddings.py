"""`oneword embeddings list` and `oneword create-embedding`."""

from __future__ import annotations

from pathlib import Path

import typer

from oneword.cli.root import DEFAULT_EMBEDDINGS_DIR, DEFAULT_MODEL, MODEL_HELP, app
from oneword.errors import OnewordError

DIR_HELP = "Embeddings folder (searched with its subfolders)."
PIPED_WIDTH = 200
"""Table width when the output is not a terminal, so that piped rows are not wrapped."""

embeddings_app = typer.Typer(help="Inspect the embeddings folder.", no_args_is_help=True)
app.add_typer(embeddings_app, name="embeddings")


@app.command("create-embedding")
def create_embedding_command(
    name: str = typer.Argument(..., help="The new word: letters, digits, _, - and . only."),
    init_text: str = typer.Option(
        "*", "--init-text", help="Text whose token vectors start the embedding; '' for zeros."
    ),
    vectors: int = typer.Option(1, "--vectors", help="Vectors per token, 1 to 75."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=MODEL_HELP),
    embeddings_dir: Path = typer.Option(Path(DEFAULT_EMBEDDINGS_DIR), "--embeddings-dir", help="Folder to write to."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file of the same name."),
    file_format: str = typer.Option("pt", "--format", help="pt (A1111's dict) or safetensors."),
) -> None:
    """Create an embedding from an initialization text and write EMBEDDINGS_DIR/NAME.pt (A1111's Create embedding)."""
    from oneword.embeddings.create import (
        CreateEmbeddingConfig,
        check_create,
        create_embedding_file,
        known_token_warning,
    )

    config = CreateEmbeddingConfig(name=name, init_text=init_text, vectors=vectors, embeddings_dir=embeddings_dir,
                                   overwrite=overwrite, format=file_format)
    check_create(config)  # before the model loads: a bad option fails at once
    from oneword import load_base

    base = load_base(model)
    warning = known_token_warning(base, name)
    if warning:
        typer.echo(warning, err=True)
    path, embedding = create_embedding_file(base, config)
    widths = "+".join(str(w) for w in embedding.widths.values())
    count = f"{embedding.n_vectors} vector{'s' if embedding.n_vectors != 1 else ''}"
    typer.echo(f"wrote {path} ({count} of width {widths}, init text {init_text!r})")


@embeddings_app.command("list")
def list_command(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=MODEL_HELP),
    embeddings_dir: Path = typer.Option(Path(DEFAULT_EMBEDDINGS_DIR), "--embeddings-dir", help=DIR_HELP),
) -> None:
    """List every embedding file: loaded, or skipped with the reason (wrong width, unreadable, duplicate...)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from oneword import load_base
    from oneword.embeddings.library import scan_embeddings

    if not embeddings_dir.is_dir():
        raise OnewordError(f"--embeddings-dir {embeddings_dir}: no such folder")
    base = load_base(model)
    library = scan_embeddings(embeddings_dir, base)
    table = Table(title=Text(f"Embeddings in {embeddings_dir} for {base.name} ({base.kind})"))
    for column in ("file", "name", "vectors", "width", "step", "status"):
        table.add_column(column, justify="right" if column in ("vectors", "step") else "left")
    for entry in library.entries:
        emb = entry.embedding
        cells = (
            entry.path.relative_to(embeddings_dir).as_posix(),
            emb.name if emb else "",
            str(emb.n_vectors) if emb else "",
            "+".join(str(w) for w in emb.widths.values()) if emb else "",
            str(emb.step) if emb and emb.step is not None else "",
            entry.status,
        )
        table.add_row(*(Text(cell) for cell in cells))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, PIPED_WIDTH))
    console.print(table)
    console.print(f"{len(library.loaded)} loaded, {len(library.skipped)} skipped", markup=False, highlight=False)
