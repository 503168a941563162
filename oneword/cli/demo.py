"""`oneword demo`: the main job on the bundled toy model."""

from __future__ import annotations

from pathlib import Path

import typer

from oneword.cli.root import app
from oneword.toy.demo import DemoConfig

_D = DemoConfig()


@app.command("demo")
def demo_command(
    concept: str = typer.Option(_D.concept, help="Toy concept to teach (`oneword toy concepts` lists them)."),
    steps: int = typer.Option(_D.steps, help="Training steps."),
    log_dir: Path = typer.Option(_D.log_dir, "--log-dir", help="Where the run's folder, data and embedding go."),
    samples: int = typer.Option(_D.samples, help="Judged samples per prompt and checkpoint."),
    model: str = typer.Option(_D.model, "--model", "-m", help="The toy model: `toy` or a folder from pretrain."),
) -> None:
    """Teach the toy model a concept no word names, from its example pictures, and judge before and after."""
    from oneword.cli.train import ProgressView
    from oneword.toy.demo import run_demo

    config = DemoConfig(concept=concept, steps=steps, log_dir=log_dir, samples=samples, model=model)
    result = run_demo(config, ProgressView(), log=lambda line: typer.echo(line))
    for step, rate in result.per_checkpoint.items():
        typer.echo(f"step {step}: judged a {result.concept} {rate:.0%} of the time")
    typer.echo(f"embedding: {result.embedding}")
    typer.echo(f"comparison grid: {result.grid}")
    typer.echo(f"judged accuracy: before {result.before:.0%} -> after {result.after:.0%}")
    typer.echo(f"log folder: {result.log_folder}")
