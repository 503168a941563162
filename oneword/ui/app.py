"""The UI's layout: one tab per step of the workflow, over one workspace and one training job."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from oneword.ui.jobs import Jobs
from oneword.ui.models import ModelCache
from oneword.ui.paths import Workspace

TITLE = "oneword"
THEME_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
"""System fonts: the default theme would fetch web fonts, and the UI works offline."""


@dataclass
class Server:
    """What `serve` started: the Gradio app, its address, and the training job it owns."""

    app: gr.Blocks
    url: str
    jobs: Jobs


def build_app(workspace: Workspace, jobs: Jobs) -> gr.Blocks:
    """The Gradio app: Prepare, Create, Train, Generate and Runs."""
    from oneword.ui.tabs import create, generate, prepare, runs, train

    models = ModelCache()
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# oneword\nWorkspace: `{workspace.root}` — every path below is relative to it.")
        with gr.Tabs():
            with gr.Tab("Prepare", id="prepare"):
                prepare.build(workspace)
            with gr.Tab("Create", id="create"):
                create.build(workspace, models)
            with gr.Tab("Train", id="train"):
                draw, seen, outputs = train.build(workspace, jobs)
            with gr.Tab("Generate", id="generate"):
                generate.build(workspace, models)
            with gr.Tab("Runs", id="runs"):
                runs.build(workspace)
        app.load(draw, seen, outputs)  # a new page (a refresh, a second tab) shows the running job at once
    return app


def serve(workspace: Workspace, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
          block: bool = True) -> Server:
    """Build and launch the app; with `block` False it returns once the server listens (tests, benchmarks)."""
    from oneword import load_base

    jobs = Jobs(load_base)
    app = build_app(workspace, jobs)
    theme = gr.themes.Default(font=THEME_FONTS, font_mono=["ui-monospace", "monospace"])
    app.queue(default_concurrency_limit=4)
    app.launch(server_name=host, server_port=port, auth=auth, prevent_thread_lock=not block, share=False,
               allowed_paths=[str(workspace.root)], theme=theme, show_error=True, quiet=True,
               auth_message="oneword: sign in with the --auth user and password")
    return Server(app, f"http://{host}:{port}/", jobs)
