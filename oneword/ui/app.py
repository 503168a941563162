"""The UI's layout: one tab per step of the workflow, over one workspace and one training job."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from oneword.ui import galleries, pictures_in
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
            with gr.Tab("Generate", id="generate") as generate_tab:
                generate.build(workspace, models, generate_tab)
            with gr.Tab("Runs", id="runs") as runs_tab:
                runs.build(workspace, runs_tab)
        app.load(draw, seen, outputs)  # a new page (a refresh, a second tab) shows the running job at once
    return app


QUEUE_POLL_SECONDS = 0.05
"""How often Gradio's queue looks for work when idle. Its Linux default (1 ms, progress every 10 ms) keeps a thread
waking a thousand times a second, each time taking the interpreter lock from the training thread: about a quarter
of the steps on the toy model. 50 ms (its Windows setting) is not visible on a page."""


def calm_queue(app: gr.Blocks) -> None:
    """Let Gradio's queue poll every QUEUE_POLL_SECONDS instead of every millisecond."""
    queue = getattr(app, "_queue", None)
    if queue is None or not hasattr(queue, "sleep_when_free"):
        raise RuntimeError("this Gradio version's queue has no `sleep_when_free`: update oneword.ui.app.calm_queue")
    queue.sleep_when_free = QUEUE_POLL_SECONDS
    queue.progress_update_sleep_when_free = 2 * QUEUE_POLL_SECONDS


def serve(workspace: Workspace, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
          block: bool = True) -> Server:
    """Build and launch the app; with `block` False it returns once the server listens (tests, benchmarks)."""
    from oneword import load_base

    jobs = Jobs(load_base)
    app = build_app(workspace, jobs)
    theme = gr.themes.Default(font=THEME_FONTS, font_mono=["ui-monospace", "monospace"])
    app.queue(default_concurrency_limit=4)
    calm_queue(app)
    app.launch(server_name=host, server_port=port, auth=auth, prevent_thread_lock=not block, share=False,
               allowed_paths=[str(workspace.root)], theme=theme, css=galleries.CSS, show_error=True, quiet=True,
               max_file_size=pictures_in.MAX_UPLOAD_BYTES,  # no uploaded file may cost more than an upload writes
               auth_message="oneword: sign in with the --auth user and password")
    if block:  # the server was stopped (Ctrl-C): a running training saves first, as on the command line
        finish_training(jobs)
    return Server(app, f"http://{host}:{port}/", jobs)


def finish_training(jobs: Jobs) -> None:
    """Stop the running training, if any, and wait until it has saved."""
    if jobs.stop() and jobs.current is not None:
        print("stopping the training: it saves first", flush=True)
        jobs.current.join()
