"""The Runs tab: the log folders of past runs in the workspace, each opening to its checkpoints' table, its
curves (loss.png), its previews and its settings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gradio as gr
import pandas as pd

from oneword.errors import OnewordError
from oneword.ui import galleries
from oneword.ui.paths import Workspace
from oneword.ui.widgets import message


def run_folders(workspace: Workspace) -> list[str]:
    """Every folder under the workspace holding a run's settings JSON, newest first."""
    folders = {p.parent for p in workspace.root.rglob("settings-*.json")}
    newest = {f: max(p.stat().st_mtime for p in f.glob("settings-*.json")) for f in folders}
    return [workspace.relative(f) for f in sorted(folders, key=lambda f: newest[f], reverse=True)]


def open_run(workspace: Workspace, run: str) -> tuple:
    """A run's (description, checkpoints table, loss.png, previews: grid and each picture)."""
    try:
        folder = workspace.resolve("run", run)
        if not folder.is_dir():
            raise OnewordError(f"run {run}: no such folder")
    except OnewordError as error:
        return message(str(error), error=True), None, None, []
    return (describe(folder), summary(folder), _file(folder / "loss.png"),
            [(str(p), p.stem.rsplit("-", 1)[-1]) for p in _previews(folder)])


def describe(folder: Path) -> str:
    """The settings a run started with, in one paragraph."""
    settings_files = sorted(folder.glob("settings-*.json"))
    if not settings_files:
        return f"`{folder.name}`: no settings file"
    s = json.loads(settings_files[-1].read_text(encoding="utf-8"))
    keys = ("kind", "model", "data", "learn_rate", "batch_size", "max_steps", "save_every", "stop",
            "stop_signal_used", "preview_prompt")
    parts = ", ".join(f"{k} `{s[k]}`" for k in keys if k in s)
    return f"**{folder.name}** ({len(settings_files)} start(s), last {settings_files[-1].stem[9:]}): {parts}"


def summary(folder: Path) -> pd.DataFrame | None:
    """checkpoints.csv as a table (None when the run has not ended)."""
    path = folder / "checkpoints.csv"
    if not path.is_file():
        return None
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    return pd.DataFrame(rows[1:], columns=rows[0]) if rows else None


def _file(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def _previews(folder: Path) -> list[Path]:
    pictures = [p for p in (folder / "images").glob("*-*.png") if p.stem.rsplit("-", 1)[-1].isdigit()]
    return sorted(pictures, key=lambda p: int(p.stem.rsplit("-", 1)[-1]))


def build(workspace: Workspace, shown: gr.Tab | None = None) -> None:
    """The tab's layout and events; `shown` (the tab itself) refreshes the runs each time it is shown."""
    with gr.Row():
        run = gr.Dropdown(choices=run_folders(workspace), value=None, label="Run", elem_id="runs-run",
                          info="A log folder (LOG_DIR/YYYY-MM-DD/NAME).")
        refresh = gr.Button("Refresh", elem_id="runs-refresh")
    about = gr.Markdown(elem_id="runs-about")
    table = gr.Dataframe(label="checkpoints (best marked *)", interactive=False, elem_id="runs-summary")
    with gr.Row():
        plot = galleries.picture("loss.png", "runs-loss")
        previews = galleries.gallery("Previews", "runs-previews")
    run.change(lambda r: open_run(workspace, r) if r else ("", None, None, []), run, [about, table, plot, previews])
    refresh.click(lambda: gr.update(choices=run_folders(workspace)), None, run)
    if shown is not None:
        shown.select(lambda: gr.update(choices=run_folders(workspace)), None, run, show_progress="hidden")
