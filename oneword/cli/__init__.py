"""The `oneword` command: thin Typer wrappers that fill a config and call one library function each."""

from __future__ import annotations

import sys

import typer

from oneword.errors import OnewordError
from oneword.fielddocs import field_docs
from oneword.train.config import TrainConfig

try:  # Typer 0.2x carries its own copy of click
    from typer._click.exceptions import ClickException as UsageProblem
except ImportError:  # older Typer runs on click itself
    from click.exceptions import ClickException as UsageProblem

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
MODEL_HELP = field_docs(TrainConfig)["model"]
"""What every command's `--model` says: the help of TrainConfig's field, so there is one text."""
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
        _fail(str(e))
    except OSError as e:  # the file system refused (full disk, read-only folder, name too long): name the file
        if debug:
            raise
        _fail(describe_os_error(e))
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, UsageProblem) as e:
        sys.exit(_show_usage_problem(e))
    except Exception as e:  # the last line of defence: a bug, reported as one line, the traceback on request
        if debug:
            raise
        _fail(f"unexpected internal error ({type(e).__name__}: {e}); run with --debug for the traceback")
    if isinstance(code, int) and code:
        sys.exit(code)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    sys.exit(1)


def describe_os_error(error: OSError) -> str:
    """An OSError as one line naming the file it concerns: `PATH: No space left on device`."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    target = f" -> {error.filename2}" if error.filename2 is not None else ""
    return f"{error.filename}{target}: {reason}"


def _show_usage_problem(error: Exception) -> int:
    """Print what the command-line parser found wrong (one line, naming the option); its exit code."""
    if isinstance(error, typer.Abort):
        return 1
    if type(error).__name__ == "NoArgsIsHelpError":  # a group called bare: its help, as the framework prints it
        error.show()
        return error.exit_code
    command = getattr(getattr(error, "ctx", None), "command_path", None)
    hint = f" (`{command} --help` lists the options)" if command else ""
    typer.secho(f"error: {error.format_message()}{hint}", err=True, fg=typer.colors.RED)
    return error.exit_code
