"""The Prepare tab: preprocess a folder of pictures (A1111's Preprocess images) and show `check`'s report as a
table, with thumbnails of the pictures it flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from oneword.errors import OnewordError
from oneword.prep.captions import CAPTION_ACTIONS, TaggerSettings
from oneword.prep.check import CheckConfig, CheckReport, check_dataset
from oneword.prep.crop import CROP_MODES, FocalWeights
from oneword.prep.preprocess import PreprocessConfig, preprocess
from oneword.toy.concepts import CONCEPTS
from oneword.ui import galleries, pictures_in
from oneword.ui.fields import FieldSpec, field_docs, form_specs
from oneword.ui.paths import Workspace
from oneword.ui.widgets import message, settings_from, widget, widgets

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MODEL_SIZES = {"toy": 64, "tiny-sd1": 512, "tiny-sd2": 768, "tiny-sd2-v": 768, "tiny-sdxl": 1024}
"""The picture width each bundled model trains on: the toy's 64 px, else its family's (SD 1 512, SD 2 768,
SDXL 1024)."""
FORM_DEFAULTS = {"src": "pictures/", "dst": "datasets/", "width": MODEL_SIZES["toy"]}
"""What the form starts with where it differs from the command line's: the workspace's folders and the toy model's
size (the Train tab's model). Captions start at the library's `copy`, as on the command line."""
UPLOAD_HEIGHT = 240
"""The tallest the upload's list of files gets (it scrolls beyond): a dataset's pictures and captions are dozens."""

CHECK_NAME = FieldSpec("name", "text", "", "The embedding's name, for check: captions should not contain it.",
                       cli="--name")


def model_size(model: str) -> int:
    """The width (and height) Prepare proposes for a model: a bundled model's size, else SD 1's 512."""
    return MODEL_SIZES.get(model, 512)


def prepare_specs() -> list[FieldSpec]:
    """PreprocessConfig's fields, then the focal weights and the tagger's, named as the command line names them."""
    tagging = field_docs(TaggerSettings)
    specs = form_specs(PreprocessConfig, choices={"crop": CROP_MODES, "caption_action": CAPTION_ACTIONS},
                       paths=("src", "dst"), exclude=("tagger", "focal", "max_pixels"))
    specs += [dataclasses.replace(spec, name=f"focal_{spec.name}") for spec in form_specs(FocalWeights)]
    specs.append(FieldSpec("tagger", "path", None, tagging["folder"], optional=True))
    specs += form_specs(TaggerSettings, exclude=("folder", "exclude"))
    specs.append(FieldSpec("exclude_tags", "text", "", tagging["exclude"]))
    return specs


def preprocess_config(workspace: Workspace, specs: list[FieldSpec], values: list[Any]) -> PreprocessConfig:
    """The PreprocessConfig the form makes, SRC, DST and the tagger inside the workspace."""
    s = settings_from(specs, values, workspace)
    focal = FocalWeights(s.pop("focal_face"), s.pop("focal_entropy"), s.pop("focal_edges"))
    general, character, exclude, folder = (s.pop("general_threshold"), s.pop("character_threshold"),
                                           s.pop("exclude_tags"), s.pop("tagger"))
    tagger = None if folder is None else TaggerSettings(folder, general, character,
                                                        [t.strip() for t in exclude.split(",") if t.strip()])
    config = PreprocessConfig(**s, focal=focal, tagger=tagger)
    if not Path(config.src).is_dir():
        raise OnewordError(f"SRC {workspace.relative(Path(config.src))}: no such folder yet; put pictures there with "
                           "Pictures in (upload pictures or a zip, or write the example pictures), then run again")
    workspace.pictures("SRC", Path(config.src))
    return config


def report_table(report: CheckReport, workspace: Workspace) -> pd.DataFrame:
    """check's findings as rows: level, picture, message."""
    rows = [(f.level, workspace.relative(f.path) if f.path else "", f.message) for f in report.findings]
    return pd.DataFrame(rows, columns=["level", "picture", "message"])


def flagged(report: CheckReport) -> list[tuple[str, str]]:
    """Thumbnails of the pictures with an error or a warning, captioned with it."""
    return [(str(f.path), f"{f.level}: {f.message}") for f in report.findings
            if f.level != "note" and f.path is not None and f.path.suffix.lower() in IMAGE_SUFFIXES
            and f.path.is_file()]


def check(workspace: Workspace, folder: str, name: str, width: float, height: float | None) -> tuple:
    """`oneword check` on a workspace folder: summary line, table, flagged thumbnails."""
    try:
        path = workspace.resolve("DST", folder)
        workspace.pictures("DST", path)
        report = check_dataset(CheckConfig(folder=path, name=name.strip() or None, width=int(width),
                                           height=int(height) if height else None))
    except OnewordError as error:
        return message(str(error), error=True), None, []
    line = f"{report.pictures} usable pictures, {len(report.errors)} errors, {len(report.warnings)} warnings"
    return line, report_table(report, workspace), flagged(report)


def run(workspace: Workspace, specs: list[FieldSpec], values: list[Any], name: str,
        progress: gr.Progress | None = None) -> tuple:
    """Preprocess SRC into DST, then check DST: message, table, flagged thumbnails."""
    try:
        config = preprocess_config(workspace, specs, values)

        def report(done: int, total: int, prepared: object) -> None:
            if progress is not None:
                progress((done, total), desc="preprocess", unit="pictures")

        result = preprocess(config, report)
    except OnewordError as error:
        return message(str(error), error=True), None, []
    line, table, thumbs = check(workspace, str(config.dst), name, config.width, config.height)
    done = (f"{result.processed} pictures processed, {len(result.skipped)} skipped, {len(result.written)} written "
            f"to {workspace.relative(Path(config.dst))}. Check: {line}")
    skipped = [f"- skipped {workspace.relative(Path(path))}: {reason}" for path, reason in result.skipped]
    return "\n".join([done, *skipped]), table, thumbs


def _said(do: Any) -> str:
    """What `do` says, or its error as the tab shows errors."""
    try:
        return do()
    except OnewordError as error:
        return message(str(error), error=True)


def build(workspace: Workspace) -> None:
    """The tab's layout and events."""
    specs = prepare_specs()
    with gr.Accordion("Pictures in", open=True):
        with gr.Row():
            uploads = gr.File(label="Upload pictures, captions (.txt) or a zip", file_count="multiple",
                              type="filepath", elem_id="prepare-upload", height=UPLOAD_HEIGHT)
            with gr.Column():
                replace = gr.Checkbox(False, label="Replace existing files", elem_id="prepare-replace",
                                      info="An upload named like a file in SRC replaces it; off, it is skipped "
                                           "and listed. Tick it before uploading.")
                concept = gr.Dropdown(list(CONCEPTS), value="star", label="Example pictures (toy concept)",
                                      elem_id="prepare-concept")
                examples = gr.Button("Write example pictures", elem_id="prepare-examples")
        taken = gr.Markdown(elem_id="prepare-taken")
    fields = {}
    with gr.Row():
        model = gr.Dropdown(list(MODEL_SIZES), value="toy", label="Model (sets the size)", elem_id="prepare-model",
                            info="The model the pictures are for: the toy 64 px, SD 1 512, SD 2 768, SDXL 1024.")
        fields.update(widgets(specs[:2], "prepare", FORM_DEFAULTS))  # SRC, DST
    for row in range(2, len(specs), 3):
        with gr.Row():
            fields.update(widgets(specs[row:row + 3], "prepare", FORM_DEFAULTS))
    model.change(lambda m: (model_size(m), None), model, [fields["width"], fields["height"]])
    name = widget(CHECK_NAME, "prepare")
    with gr.Row():
        run_button = gr.Button("Run preprocess", variant="primary", elem_id="prepare-run")
        check_button = gr.Button("Check DST only", elem_id="prepare-check")
    note = gr.Markdown(elem_id="prepare-message")
    table = gr.Dataframe(label="check", interactive=False, wrap=True, elem_id="prepare-report")
    thumbs = galleries.gallery("Flagged pictures", "prepare-flagged")
    ordered = [fields[s.name] for s in specs]

    def run_form(name_value: str, *values: Any,
                 progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008 (Gradio injects it)
        return run(workspace, specs, list(values), name_value, progress)

    uploads.upload(lambda files, src, over: _said(lambda: pictures_in.take_in(workspace, files or [], src, over)),
                   [uploads, fields["src"], replace], taken)
    examples.click(lambda c, src: _said(lambda: pictures_in.write_examples(workspace, c, src)),
                   [concept, fields["src"]], taken)
    run_button.click(run_form, [name, *ordered], [note, table, thumbs])
    check_button.click(lambda folder, n, w, h: check(workspace, folder, n, w, h),
                       [fields["dst"], name, fields["width"], fields["height"]], [note, table, thumbs])
