"""`oneword create-hypernetwork`."""

from __future__ import annotations

from pathlib import Path

import typer

from oneword.cli.root import DEFAULT_HYPERNETWORK_DIR, DEFAULT_MODEL, MODEL_HELP, app


@app.command("create-hypernetwork")
def create_hypernetwork_command(
    name: str = typer.Argument(..., help="Its name: letters, digits, _, - and . only."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help=MODEL_HELP),
    modules: str = typer.Option(
        "", "--modules", help="Context widths to give modules, e.g. '768, 320, 640, 1280' (default: every width "
                              "the model's attention sees, A1111's default for SD 1.x)."),
    layer_structure: str = typer.Option("1, 2, 1", "--layer-structure",
                                        help="Layer widths as multiples of the context width; starts and ends with 1."),
    activation: str = typer.Option("linear", "--activation", help="linear, relu, leakyrelu, elu, swish, tanh, "
                                                                  "sigmoid, gelu, silu, mish ..."),
    weight_init: str = typer.Option("Normal", "--weight-init", help="Normal, XavierUniform, XavierNormal, "
                                                                    "KaimingUniform or KaimingNormal."),
    layer_norm: bool = typer.Option(False, "--layer-norm", help="Add layer normalization after each layer."),
    use_dropout: bool = typer.Option(False, "--use-dropout", help="Use --dropout-structure."),
    dropout_structure: str = typer.Option("0, 0, 0", "--dropout-structure",
                                          help="A dropout rate after each layer; first and last 0."),
    hypernetwork_dir: Path = typer.Option(Path(DEFAULT_HYPERNETWORK_DIR), "--hypernetwork-dir",
                                          help="Folder to write to."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file of the same name."),
    file_format: str = typer.Option("pt", "--format", help="pt (A1111's) or safetensors."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial weights."),
) -> None:
    """Create a hypernetwork and write HYPERNETWORK_DIR/NAME.pt (A1111's Create hypernetwork)."""
    from oneword.hypernetworks.create import CreateHypernetworkConfig, check_create, create_hypernetwork_file

    config = CreateHypernetworkConfig(
        name=name, modules=modules, layer_structure=layer_structure, activation=activation, weight_init=weight_init,
        layer_norm=layer_norm, use_dropout=use_dropout, dropout_structure=dropout_structure,
        hypernetwork_dir=hypernetwork_dir, overwrite=overwrite, format=file_format, seed=seed,
    )
    check_create(config)  # before the model loads: a bad option fails at once
    from oneword import load_base

    path, hypernetwork = create_hypernetwork_file(load_base(model), config)
    count = sum(p.numel() for p in hypernetwork.parameters())
    typer.echo(f"wrote {path} (modules {', '.join(map(str, hypernetwork.widths))}; {count:,} weights)")
