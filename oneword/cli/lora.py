"""`oneword lora list`: every file of the LoRA folder, read or left out with the reason."""

from __future__ import annotations

from pathlib import Path

import typer

from oneword.cli.root import DEFAULT_LORA_DIR, DEFAULT_MODEL, LORA_DIR_HELP, MODEL_HELP, app
from oneword.errors import OnewordError

PIPED_WIDTH = 200
"""Table width when the output is not a terminal, so that piped rows are not wrapped."""

lora_app = typer.Typer(help="Inspect the LoRA folder.", no_args_is_help=True)
app.add_typer(lora_app, name="lora")


@lora_app.command("list")
def list_command(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=MODEL_HELP),
    lora_dir: Path = typer.Option(Path(DEFAULT_LORA_DIR), "--lora-dir", help=LORA_DIR_HELP),
) -> None:
    """List every LoRA file: its name, kind (LoRA, LoCon, LoHa, LoKr, PEFT), rank and the layers that fit the
    model, or why it is left out."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from oneword import load_base
    from oneword.lora.survey import survey

    if not lora_dir.is_dir():
        raise OnewordError(f"--lora-dir {lora_dir}: no such folder")
    base = load_base(model)
    rows = survey(lora_dir, base)
    table = Table(title=Text(f"LoRAs in {lora_dir} for {base.name} ({base.kind})"))
    for column in ("file", "name", "kind", "rank", "layers", "status"):
        table.add_column(column, justify="right" if column in ("rank", "layers") else "left")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row.cells(lora_dir)))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, PIPED_WIDTH))
    console.print(table)
    loaded = sum(1 for row in rows if not row.problem)
    console.print(f"{loaded} loaded, {len(rows) - loaded} skipped", markup=False, highlight=False)
