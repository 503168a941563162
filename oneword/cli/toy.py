"""`oneword toy ...`: the toy world's model, judge, report and concepts."""

from __future__ import annotations

from pathlib import Path

import typer

from oneword.cli.root import app

toy_app = typer.Typer(help="The toy world: a small model that ships with oneword, its judge and its concepts.",
                      no_args_is_help=True)
app.add_typer(toy_app, name="toy")


@toy_app.command("pretrain")
def pretrain_command(
    out: Path = typer.Option(Path("toy-model"), help="Folder for the trained model (a diffusers folder + judge)."),
    seed: int = typer.Option(0, help="Seed of scenes, captions, weights and noise."),
    diffusion_steps: int = typer.Option(7000, help="Optimizer steps of the UNet and text encoder."),
    vae_steps: int = typer.Option(1500, help="Optimizer steps of the VAE."),
    judge_steps: int = typer.Option(800, help="Optimizer steps of the judge."),
    n_images: int = typer.Option(20000, help="Distinct rendered scenes."),
    stages: Path | None = typer.Option(
        None, help="Keep the VAE and judge here and reuse them on a rerun with the same settings; EMA snapshots too."
    ),
) -> None:
    """Train the toy model and its judge from scratch (the recipe of the bundled model)."""
    import torch

    from oneword.toy.pretrain import PretrainConfig, pretrain

    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = PretrainConfig(seed=seed, diffusion_steps=diffusion_steps, vae_steps=vae_steps, judge_steps=judge_steps,
                         n_images=n_images)
    info = pretrain(cfg, out, log=lambda line: typer.echo(line, err=True), stages=stages)
    typer.echo(f"wrote {out} in {info['timings']['total_s'] / 60:.1f} min")


@toy_app.command("report")
def report_command(
    samples: int = typer.Option(64, help="Samples per word and per concept (fixed seeds)."),
    tokens: int = typer.Option(1000, help="Unseen tokens (words no caption uses) whose visibility is measured."),
    meaning_tokens: int = typer.Option(
        100, help='Unseen tokens appended to "a photo of a COLOUR SHAPE" to measure what they change.'
    ),
    meaning_samples: int = typer.Option(8, help="Samples per appended token, with and without it (same seeds)."),
    out: Path = typer.Option(Path("outputs/toy-report"), help="Folder for report.json and grid.png."),
    model: str = typer.Option("toy", "--model", "-m", help="The toy model: `toy` (bundled) or a folder from pretrain."),
) -> None:
    """How often the judge agrees with the prompt, per shape and colour word, and each concept's baseline; how
    visible an unseen word is to the text encoder, and how much it changes a picture."""
    from oneword.errors import OnewordError
    from oneword.toy.bundle import load_toy
    from oneword.toy.report import ReportConfig, toy_report

    counts = {"--samples": samples, "--tokens": tokens, "--meaning-tokens": meaning_tokens,
              "--meaning-samples": meaning_samples}
    problems = [f"{option} must be at least 1, but is {value}" for option, value in counts.items() if value < 1]
    if problems:
        raise OnewordError("; ".join(problems))
    base, judge = load_toy(model)
    rc = ReportConfig(samples=samples, tokens=tokens, meaning_tokens=meaning_tokens, meaning_samples=meaning_samples)
    report = toy_report(base, judge, rc, out)
    for word, rate in report["words"].items():
        typer.echo(f"{word:>10}: {rate:6.1%}")
    for name, rate in report["concept_baselines"].items():
        typer.echo(f"baseline {name:>10}: {rate:6.1%}")
    typer.echo(f"judge accuracy: {report['judge_accuracy']:.1%}")
    seen = report["word_visibility"]
    typer.echo(f"word visibility (median 1 - cosine): {seen['unseen_tokens']} unseen tokens "
               f"{seen['unseen_median']:.5f}, caption words {seen['caption_median']:.5f}, ratio {seen['ratio']:.3f}")
    meaning = report["word_meaning"]
    for factor in ("shape", "colour"):
        m = meaning[factor]
        typer.echo(f"{factor} with an unseen token appended: {m['with']:.1%} (without: {m['without']:.1%}, "
                   f"{m['points']:+.1f} points; {meaning['tokens']} tokens x {meaning['samples_per_token']} samples)")
    typer.echo(f"report: {out / 'report.json'}")


@toy_app.command("concepts")
def concepts_command() -> None:
    """List the toy world's concepts: name, kind and suggested initialisation text."""
    from oneword.toy.concepts import CONCEPTS

    for c in CONCEPTS.values():
        typer.echo(f"{c.name}\t{c.kind}\tinit text: {c.init_text}\t{c.description}")


@toy_app.command("concept")
def concept_command(
    name: str = typer.Argument(..., help="Concept name (see `oneword toy concepts`)."),
    out: Path = typer.Option(..., help="Folder to write the example images into."),
    n: int = typer.Option(12, help="Number of example images (5-20)."),
) -> None:
    """Write a concept's example images, as a user's dataset folder would look."""
    from oneword.errors import OnewordError
    from oneword.toy.concepts import get_concept, write_concept_examples

    concept = get_concept(name)
    if not 5 <= n <= 20:
        raise OnewordError(f"--n must be between 5 and 20, but is {n}")
    if out.exists() and any(out.iterdir()):
        raise OnewordError(f"--out {out}: folder is not empty")
    for path in write_concept_examples(concept, out, n):
        typer.echo(str(path))
