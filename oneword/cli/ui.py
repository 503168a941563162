"""`oneword ui`: the web UI, on this machine only unless --listen (which needs --auth)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from oneword.cli.root import app
from oneword.errors import OnewordError

INSTALL_HINT = 'the web UI needs Gradio: pip install "oneword[ui]"'


def parse_auth(text: str) -> tuple[str, str]:
    """`user:password` as a pair; an error naming --auth when either is empty."""
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise OnewordError("--auth must be USER:PASSWORD, both non-empty")
    return user, password


@app.command("ui")
def ui_command(
    port: int = typer.Option(7860, help="Port to serve on."),
    workspace: Path = typer.Option(Path("."), help="The folder the UI reads and writes; paths outside it are refused."),
    listen: bool = typer.Option(False, "--listen", help="Serve other machines too (0.0.0.0); needs --auth."),
    auth: str | None = typer.Option(None, help="USER:PASSWORD every visitor must give."),
) -> None:
    """Start the web UI: prepare, create, train, generate and look back at runs in a browser."""
    credentials = parse_auth(auth) if auth is not None else None
    if listen and credentials is None:
        raise OnewordError("--listen serves other machines: give --auth USER:PASSWORD too")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise OnewordError(INSTALL_HINT) from None
    from oneword.ui.paths import Workspace

    space = Workspace.at(workspace)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(space.root / ".cache" / "gradio"))  # the UI's copies stay inside
    from oneword.ui.app import serve

    host = "0.0.0.0" if listen else "127.0.0.1"
    typer.echo(f"oneword ui: http://{host}:{port}/ (workspace {space.root}; Ctrl-C stops the server)")
    serve(space, host, port, credentials)
