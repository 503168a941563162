"""The `oneword` command: thin Typer wrappers that fill a config and call one library function each."""

from __future__ import annotations

import sys

import typer

from oneword.errors import OnewordError

app = typer.Typer(
    name="oneword",
    help="Teach a Stable Diffusion model a new word: embeddings that load in A1111, ComfyUI and diffusers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DEFAULT_MODEL = "toy"
"""What `--model` loads when not given: the toy-world model bundled in the package (64 px, SD 1.x layout)."""
MODEL_HELP = ("Base model: a diffusers folder, a .safetensors/.ckpt file, `toy` (bundled) or a tiny random model "
              "(tiny-sd1, tiny-sd2, tiny-sd2-v, tiny-sdxl).")
DEFAULT_EMBEDDINGS_DIR = "embeddings"
"""The folder every command reads embeddings from (A1111's `embeddings/`)."""
DEFAULT_HYPERNETWORK_DIR = "hypernetworks"
"""The folder every command reads hypernetworks from (A1111's `models/hypernetworks/`)."""

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
) -> None:
    _state["debug"] = debug


def _register() -> None:
    from oneword.cli import demo, embeddings, generate, hypernetworks, prep, toy, train, ui  # noqa: F401  (each module adds its commands to `app`)


def main() -> None:
    """Entry point of the `oneword` script: one clear line and exit 1 on bad input, tracebacks with --debug."""
    from oneword.offline import go_offline, quiet_libraries

    go_offline()
    quiet_libraries()
    _register()
    debug = "--debug" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)  # a command's `typer.Exit(n)` comes back as n
    except OnewordError as e:
        if debug:
            raise
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # the last line of defence: a one-line message, the traceback only on request
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        if debug:
            raise
        typer.secho(f"error: {type(e).__name__}: {e} (run with --debug for the traceback)", err=True, fg="red")
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
