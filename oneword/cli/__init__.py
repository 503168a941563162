"""The `oneword` command: thin Typer wrappers that fill a config and call one library function each.

Each module of this package adds its commands to the app of oneword/cli/root.py; `main` runs it.
"""

from __future__ import annotations

import sys

import typer

from oneword.cli.root import app
from oneword.errors import OnewordError

try:  # Typer 0.2x carries its own copy of click
    from typer._click.exceptions import ClickException as UsageProblem
except ImportError:  # older Typer runs on click itself
    from click.exceptions import ClickException as UsageProblem


def _register() -> None:
    from oneword.cli import demo, embeddings, generate, hypernetworks, inspect, lora, prep, toy, train, ui  # noqa: F401  (each module adds its commands to `app`)


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
