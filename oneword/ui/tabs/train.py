"""The Train tab: every TrainConfig option, Start and Stop, and the running job drawn live (status, curves,
previews with the best marked, the checkpoints' table at the end)."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from oneword import kinds
from oneword.errors import OnewordError, gather
from oneword.generate.samplers import SAMPLERS
from oneword.lora.names import TARGETS
from oneword.lora.trainable import PRECISIONS
from oneword.models.load import PREDICTION_TYPES
from oneword.outputs import name_problem, path_inside
from oneword.toy.bundle import TOY_NAME
from oneword.train.config import CLIP_MODES, LATENT_SAMPLING, STOPS, TrainConfig
from oneword.train.dataset import data_problem
from oneword.train.logfolder import LogFolder
from oneword.train.templates import TEMPLATE_NAMES
from oneword.ui import charts, galleries
from oneword.ui.fields import FieldSpec, form_specs
from oneword.ui.jobs import Jobs, JobState
from oneword.ui.labels import for_form
from oneword.ui.paths import BUNDLED_MODELS, Workspace
from oneword.ui.widgets import message, settings_from, widget, widgets

PATH_FIELDS = ("data", "log_dir", "embeddings_dir", "hypernetwork_dir", "lora_dir", "clip")
GROUPS = {
    "What to train": ("name", "kind", "data", "model", "prediction_type", "init_text", "vectors", "resume"),
    "Optimizer": ("learn_rate", "clip_grad", "clip_grad_value", "batch_size", "grad_accum", "seed"),
    "Images and captions": ("width", "height", "keep_size", "template", "shuffle_tags", "tag_dropout",
                            "caption_dropout", "latent_sampling", "alpha_weight"),
    "LoRA": ("rank", "alpha", "targets", "conv_rank", "conv_alpha", "train_text_encoder", "text_encoder_lr",
             "save_precision"),
    "Pivotal (vectors and LoRA)": ("vectors_lr", "ti_frac"),
    "Steps and files": ("max_steps", "save_every", "preview_every", "csv_every", "log_dir", "embeddings_dir",
                        "hypernetwork_dir", "lora_dir"),
    "Previews": ("preview_prompt", "preview_negative", "preview_seed", "preview_steps", "preview_cfg",
                 "preview_sampler"),
    "Validation, scores and stopping": ("validate_every", "validation_size", "stop", "stop_signal", "stop_patience",
                                        "stop_min_delta", "score", "clip", "score_samples"),
    "Speed and memory": ("half_precision", "channels_last", "flash_attention", "fused_optimizer", "compile",
                         "cache_conditioning", "gradient_checkpointing"),
}
"""How the form groups TrainConfig's fields (every field but `extra` appears once)."""
DEVICES = ("auto", "cpu", "cuda")
DEVICE = FieldSpec("device", "choice", "auto", "auto, cpu or cuda.", DEVICES)
TOY_STEPS = {"max_steps": 400, "save_every": 50, "preview_every": 50, "validate_every": 50}
"""What the form proposes for the toy model, whose embeddings learn a concept in 100-300 steps and are best by 200-400
(docs/benchmarks.md), where the library's defaults (100,000 steps, a checkpoint every 500) suit SD models."""
REFRESH_SECONDS = 1.0
"""How often a page asks the server for the job's state."""


def train_specs() -> list[FieldSpec]:
    """TrainConfig's fields as form fields, starting from a bare TrainConfig (an embedding's defaults)."""
    choices = {"kind": kinds.names(), "clip_grad": CLIP_MODES, "latent_sampling": LATENT_SAMPLING, "stop": STOPS,
               "preview_sampler": tuple(SAMPLERS), "template": TEMPLATE_NAMES, "model": BUNDLED_MODELS,
               "prediction_type": ("", *PREDICTION_TYPES), "targets": ("", *TARGETS), "save_precision": ("", *PRECISIONS)}
    specs = form_specs(TrainConfig, choices=choices, paths=PATH_FIELDS, exclude=("extra",), defaults=TrainConfig())
    # the preview interval stays a number field: the model's step defaults (TOY_STEPS or the library's) fill it
    return [dataclasses.replace(s, optional=False) if s.name == "preview_every" else s for s in specs]


def train_config(workspace: Workspace, specs: list[FieldSpec], values: list[Any]) -> TrainConfig:
    """The TrainConfig the form's values make, every path inside the workspace, checked."""
    def template(label: str, text: str | None) -> str | None:  # empty: the kind's template
        return workspace.template(label, text) if str(text or "").strip() else None

    problems: list[str] = []  # every problem at once: the fields', the settings' and the data folder's
    settings = settings_from(specs, values, workspace, special={"model": workspace.model, "template": template},
                             problems=problems)
    kind = settings.get("kind")
    own = kinds.get(kind).options if kind in kinds.names() else ()
    settings.update({name: None for name in kind_options() if name not in own})  # the form shows every kind's
    config = TrainConfig(**settings)
    problems += config.problems()
    if kind in kinds.names() and not name_problem("NAME", config.name):
        problems += name_path_problems(workspace, config)
    if "data" in settings:
        problems += [p for p in (data_problem(config.data),) if p]
        try:
            workspace.pictures("--data", Path(config.data))
        except OnewordError as error:
            problems.append(str(error))
    gather(list(dict.fromkeys(problems)))
    return config


def name_path_problems(workspace: Workspace, config: TrainConfig) -> list[str]:
    """What refuses the paths a run of NAME reads and writes: a link (or a folder) where NAME.pt or
    NAME.safetensors would be in its kind's folder (through `path_inside`), and a link where today's log folder
    LOG_DIR/DAY/NAME would be (the run writes inside it)."""
    problems = []
    _, folder = kinds.get(config.kind).trained_dir(config)
    for suffix in (".pt", ".safetensors"):
        try:
            path_inside(folder, f"{config.name}{suffix}", what="NAME", overwrite=True)
        except OnewordError as error:
            problems.append(str(error))
    run = LogFolder.for_run(config.log_dir, config.name).root
    if run.is_symlink():
        problems.append(f"NAME: {run} is a link; the run's log folder is written inside {run.parent}, never "
                        "through a link")
    elif Path(config.log_dir).resolve().is_relative_to(workspace.root) and not run.resolve().is_relative_to(
            workspace.root):  # a LOG_DIR outside is refused as the field it is; this is a day folder linked out
        problems.append(f"NAME: the run's log folder {run} leads outside the workspace {workspace.root} (refused)")
    return problems


def start(workspace: Workspace, jobs: Jobs, specs: list[FieldSpec], device: str, values: list[Any]) -> str:
    """Start training from the form; the message says what happened."""
    try:
        config = train_config(workspace, specs, values)
        job = jobs.start(config, device)
    except OnewordError as error:
        return message(str(error), error=True)
    state = job.wait_set_up()  # what only the model tells (a NAME already trained...) fails here, not after "started"
    if state.status == "failed":
        return message(state.message, error=True)
    return f"started {config.name}"


def stop(jobs: Jobs) -> str:
    """Ask the running job to save and stop."""
    return "stopping: the run saves after this step" if jobs.stop() else "no training is running"


FOLLOW_KIND = ("learn_rate", "template", "batch_size")
"""The fields whose defaults follow the kind and the model (then every kind's own fields, kind_options())."""


def form_defaults(kind: str, model: str = TOY_NAME) -> dict[str, Any]:
    """What the fields that follow the kind and the model show for them: FOLLOW_KIND's defaults, the kind's own
    fields' defaults and other kinds' fields empty (unchecked)."""
    config = TrainConfig(kind=kind, model=str(model or "").strip())
    own = getattr(kinds.get(kind), "options", ())
    shown = {name: getattr(config, name) for name in FOLLOW_KIND}
    for name in kind_options():
        value = getattr(config, name) if name in own else None
        shown[name] = bool(value) if name in _checkboxes() else ("" if value is None else value)
    return shown


@functools.cache
def _checkboxes() -> frozenset[str]:
    """TrainConfig's fields the form shows as checkboxes."""
    return frozenset(s.name for s in train_specs() if s.kind == "bool")


def defaults_switch(kind: str, model: str, *values: Any) -> tuple:
    """The fields of form_defaults (in its order) after choosing `kind` or `model`: the new defaults where a field
    still holds any kind's default on any model (or nothing), what the user typed otherwise; another kind's fields
    empty and the checkboxes the kind's, as a form for `kind` starts."""
    new = form_defaults(kind, model)
    known = [form_defaults(k, m) for k in kinds.names() for m in (TOY_NAME, "")]
    own = set(FOLLOW_KIND) | set(getattr(kinds.get(kind), "options", ()))
    return tuple(value if name in own and not isinstance(new[name], bool)
                 and not _is_default(value, [k[name] for k in known]) else new[name]
                 for name, value in zip(new, values, strict=True))


def step_defaults(model: str) -> dict[str, int]:
    """The step counts the form proposes for `model`: toy-sized ones for the toy model, the library's for any other."""
    library = TrainConfig()
    steps = {name: getattr(library, name) for name in TOY_STEPS}
    return {**steps, **TOY_STEPS} if str(model or "").strip() == TOY_NAME else steps


def model_switch(model: str, *values: Any) -> tuple:
    """The step fields (TOY_STEPS' order) after choosing `model`: its defaults where a field still holds a model's
    default (or nothing), what the user typed otherwise."""
    known = [step_defaults(m) for m in (TOY_NAME, "")]
    new = step_defaults(model)
    return tuple(new[name] if _is_default(value, [k[name] for k in known]) else value
                 for name, value in zip(TOY_STEPS, values, strict=True))


def _is_default(value: Any, defaults: list[Any]) -> bool:
    """Whether a field's value is nothing or one of `defaults` (numbers compared as numbers)."""
    text = "" if value is None else str(value).strip()
    if text == "" or text in {str(d) for d in defaults}:
        return True
    try:
        return float(text) in [float(d) for d in defaults if isinstance(d, int | float) and not isinstance(d, bool)]
    except ValueError:  # text the user typed is theirs, even when it is no number
        return False


def kind_options() -> tuple[str, ...]:
    """The fields only some kind reads (each kind's `options`: a LoRA's rank...), in the form's order."""
    return tuple(dict.fromkeys(n for k in kinds.names() for n in getattr(kinds.get(k), "options", ())))


def build(workspace: Workspace, jobs: Jobs) -> tuple[Callable, gr.State, list]:
    """The tab's layout and events (inside a gr.Tab); returns what a page load calls to draw the job at once."""
    specs = train_specs()
    by_name = {s.name: s for s in specs}
    defaults = {"name": "", "data": "datasets/", **step_defaults(by_name["model"].default)}
    inputs: dict[str, gr.components.Component] = {}
    for title, names in GROUPS.items():
        with gr.Accordion(title, open=title == "What to train"):
            for row in range(0, len(names), 3):
                with gr.Row():
                    inputs.update(widgets([by_name[n] for n in names[row:row + 3]], "train", defaults))
    ordered = [inputs[s.name] for s in specs]
    with gr.Row():
        device = widget(DEVICE, "train")
        start_button = gr.Button("Start", variant="primary", elem_id="train-start-button")
        stop_button = gr.Button("Stop (saves)", variant="stop", elem_id="train-stop-button")
    note = gr.Markdown(elem_id="train-message")
    status = gr.Markdown(workspace.shown(for_form(charts.status_line(jobs.state()))), elem_id="train-status")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="loss", color="series", label="training loss", elem_id="train-loss-plot")
        val_plot = gr.LinePlot(x="step", y="loss", color="series", label="validation loss", elem_id="train-val-plot")
        score_plot = gr.LinePlot(x="step", y="score", color="series", label="scores", elem_id="train-score-plot",
                                 visible=False)
    gallery = galleries.gallery("Previews", "train-previews")
    summary = gr.Dataframe(label="checkpoints", interactive=False, elem_id="train-summary")
    seen = gr.State({})
    timer = gr.Timer(REFRESH_SECONDS)

    following = [inputs[n] for n in (*FOLLOW_KIND, *kind_options())]
    for chooser in ("kind", "model"):
        inputs[chooser].change(defaults_switch, [inputs["kind"], inputs["model"], *following], following)
    steps = [inputs[n] for n in TOY_STEPS]
    inputs["model"].change(model_switch, [inputs["model"], *steps], steps)
    start_button.click(lambda d, *v: start(workspace, jobs, specs, d, list(v)), [device, *ordered], note)
    stop_button.click(lambda: stop(jobs), None, note)
    outputs = [seen, status, loss_plot, val_plot, score_plot, gallery, summary]
    def draw(drawn: dict) -> tuple:
        return redraw(jobs.state(), drawn, workspace)

    timer.tick(draw, seen, outputs, show_progress="hidden")
    return draw, seen, outputs


def redraw(state: JobState, drawn: dict, workspace: Workspace | None = None) -> tuple:
    """What the tab shows of `state`, each part sent only when it changed since the page last drew (`drawn`); the
    status's paths relative to `workspace` when it is given."""
    keys = {
        "status": (state.version, state.status, int(time.monotonic()) if state.active else 0),  # ETA counts down
        "loss": len(state.train_loss),
        "val": len(state.val_loss),
        "scores": len(state.scores),
        "previews": (len(state.previews), state.best_step),
        "summary": (state.status, len(state.records), state.best_step),
    }
    if drawn.get("status") == keys["status"]:
        return (gr.skip(),) * 7

    def changed(part: str) -> bool:
        return drawn.get(part) != keys[part]

    finished = state.status == "finished" and bool(state.records)
    line = for_form(charts.status_line(state))
    marked = [(str(path), f"step {step}" + (" ★ best" if step == state.best_step else ""))
              for step, path in state.previews if path.is_file()]
    return (
        keys,
        workspace.shown(line) if workspace else line,
        charts.loss_frame(state) if changed("loss") else gr.skip(),
        charts.validation_frame(state) if changed("val") else gr.skip(),
        gr.update(value=charts.scores_frame(state), visible=bool(state.scores)) if changed("scores") else gr.skip(),
        marked if changed("previews") else gr.skip(),
        gr.update(value=charts.summary_frame(state) if finished else None, visible=finished)
        if changed("summary") else gr.skip(),
    )
