"""The Generate tab: txt2img with the workspace's embeddings, hypernetworks and LoRAs, each image shown with its
parameters; and Compare: one prompt and seed without the add-on and with each checkpoint of a run (an embedding,
hypernetwork, LoRA or pivotal run)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from oneword.errors import OnewordError
from oneword.generate.config import GenerateConfig
from oneword.generate.progress import Drawing, watching
from oneword.generate.samplers import SAMPLERS
from oneword.outputs import path_inside
from oneword.ui import galleries
from oneword.ui.fields import FieldSpec, form_specs
from oneword.ui.inspection import inspection, listed_files
from oneword.ui.models import ModelCache
from oneword.ui.paths import Workspace
from oneword.ui.tabs.create import MODEL
from oneword.ui.widgets import message, settings_from, widget, widgets

FOLDERS = [
    FieldSpec("embeddings_dir", "path", "embeddings", "Embeddings folder; prompts use them by file stem."),
    FieldSpec("hypernetwork_dir", "path", "hypernetworks", "Hypernetworks folder, for <hypernet:NAME:STRENGTH>."),
    FieldSpec("lora_dir", "path", "lora", "LoRA folder, for <lora:NAME:WEIGHT> (A1111's models/Lora)."),
    FieldSpec("out", "path", "outputs/txt2img", "Folder for the PNGs (A1111 names NNNNN-SEED.png)."),
]
WORD = FieldSpec("word", "text", "", "The word in the prompt each checkpoint stands for [default: an embedding "
                 "run's name, a pivotal run's own word]; left empty for LoRAs and hypernetworks.")
SYNTAX = """**Prompt syntax** (A1111's): `(word)` ×1.1, `((word))` ×1.21, `[word]` ÷1.1, `(word:1.3)` an explicit
weight, `\\(` a literal parenthesis, `BREAK` starts a new 75-token chunk; an embedding by its file stem (`mychar`);
`<hypernet:NAME:0.8>` applies a hypernetwork at a strength; `<lora:NAME:0.8>` a LoRA (`<lora:NAME:TE:UNET>`, `te=`,
`unet=` weigh the text encoder and the UNet apart); a tag of a type oneword does not know is left out of the
prompt, as in A1111, with a note."""


def generate_specs() -> list[FieldSpec]:
    """GenerateConfig's fields, the model and the folders."""
    return [*form_specs(GenerateConfig, choices={"sampler": tuple(SAMPLERS)}), MODEL, *FOLDERS]


def available(workspace: Workspace, embeddings_dir: str, hypernetwork_dir: str, lora_dir: str = "lora") -> str:
    """What a prompt can use: the embedding, hypernetwork and LoRA files of the folders."""
    from oneword.embeddings.library import embedding_files
    from oneword.folder_walk import unreadable
    try:
        e_dir = workspace.resolve("--embeddings-dir", embeddings_dir)
        libraries = tag_libraries(workspace, hypernetwork_dir, lora_dir)
    except OnewordError as error:
        return message(str(error), error=True)
    files = embedding_files(e_dir, workspace.root) if e_dir.is_dir() else []
    words = sorted({p.stem for p in files if unreadable(p, workspace.root) is None})
    hypers = next(library for library in libraries if library.tag == "hypernet").names()
    loras = next(library for library in libraries if library.tag == "lora").names()
    return (f"embeddings: {', '.join(f'`{w}`' for w in words) or 'none'} — hypernetworks: "
            f"{', '.join(f'`<hypernet:{h}:1>`' for h in hypers) or 'none'} — LoRAs: "
            f"{', '.join(f'`<lora:{n}:1>`' for n in loras) or 'none'}")


def tag_libraries(workspace: Workspace, hypernetwork_dir: str, lora_dir: str = "lora") -> list:
    """The files of every prompt tag type's folder in the workspace (the hypernetwork and LoRA folders as the form
    says)."""
    from oneword.extra_networks import TAG_TYPES, scan_folders

    folders = {name: workspace.resolve(t.option, t.folder) for name, t in TAG_TYPES.items()}
    folders["hypernet"] = workspace.resolve("--hypernetwork-dir", hypernetwork_dir)
    folders["lora"] = workspace.resolve("--lora-dir", lora_dir)
    return scan_folders(folders, within=workspace.root)


def drawing_line(drawing: Drawing) -> str:
    """What Generate's progress bar says while a batch is drawn: "drawing 4 images, step 12/20"."""
    images = "1 image" if drawing.images == 1 else f"{drawing.images} images"
    return f"drawing {images}, step {drawing.step}/{drawing.steps}"


def _named(workspace: Workspace, path: Path) -> str:
    """A file of a folder as the page names it: by its place in the workspace (a link not followed)."""
    return path.relative_to(workspace.root).as_posix() if path.is_relative_to(workspace.root) else str(path)


def generate(workspace: Workspace, models: ModelCache, specs: list[FieldSpec], values: list[Any],
             progress: Callable[..., object] | None = None) -> tuple:
    """Draw the images and save them with A1111's parameters: (message, gallery, parameters read back).

    `progress` (a gr.Progress) is told each denoising step."""
    from oneword.embeddings.library import scan_embeddings
    from oneword.embeddings.missing import missing_embedding_notes
    from oneword.extra_networks import check_prompt, library_notes
    from oneword.generate.pnginfo import read_parameters
    from oneword.generate.txt2img import generate as draw
    from oneword.generate.txt2img import save_images

    def tell(drawing: Drawing) -> None:
        if progress is not None:
            progress((drawing.step, drawing.steps), desc=drawing_line(drawing), unit="steps")

    try:
        s = settings_from(specs, values, workspace, special={"model": workspace.model})
        model, e_dir, h_dir, out = s.pop("model"), s.pop("embeddings_dir"), s.pop("hypernetwork_dir"), s.pop("out")
        l_dir = s.pop("lora_dir")
        config = GenerateConfig(**s)
        notes = check_prompt(config.prompt)
        with models.use(model) as base:
            library = scan_embeddings(e_dir, base, within=workspace.root) if e_dir.is_dir() else None
            libraries = tag_libraries(workspace, str(h_dir), str(l_dir))
            runs = {Path(folder).name: folder for folder in reversed(run_folders(workspace))}  # the newest
            notes += missing_embedding_notes([config.prompt, config.negative], library, base.encoders[0].tokenizer,
                                             lambda path: _named(workspace, path), runs)
            with watching(tell):
                images = draw(base, config, library.loaded if library else {}, *libraries)
            paths = save_images(images, out)
        notes += library_notes(libraries)
    except OnewordError as error:
        return message(str(error), error=True), [], ""
    parameters = "\n\n".join(f"{p.name}\n{read_parameters(p)}" for p in paths)
    wrote = f"wrote {', '.join(workspace.relative(p) for p in paths)}"
    return "\n\n".join([*(f"note: {n}" for n in notes), wrote]), [str(p) for p in paths], parameters


CHECKPOINT_SUFFIXES = (".pt", ".safetensors")


def checkpoint_folders() -> list[str]:
    """The log folder's subfolders that hold checkpoints: every registered kind's (`embeddings`, `lora`, ...)."""
    from oneword import kinds

    return list(dict.fromkeys(kinds.get(name).folder for name in kinds.names()))


def run_checkpoints(folder: Path) -> list[Path]:
    """A log folder's checkpoints (FOLDER/NAME-STEP.pt or .safetensors of every kind's folder), by step."""
    found = [p for sub in checkpoint_folders() for p in (folder / sub).glob("*-*")
             if p.suffix in CHECKPOINT_SUFFIXES and p.stem.rsplit("-", 1)[-1].isdigit() and p.is_file()]
    return sorted(found, key=lambda p: int(p.stem.rsplit("-", 1)[-1]))


def run_folders(workspace: Workspace) -> list[str]:
    """Every log folder under the workspace that holds checkpoints of any kind, newest day first."""
    folders = {p.parent.parent for sub in checkpoint_folders() for p in workspace.root.rglob(f"{sub}/*-*")
               if p.parent.parent.parent.name[:2].isdigit() and p.suffix in CHECKPOINT_SUFFIXES
               and p.stem.rsplit("-", 1)[-1].isdigit()}
    return sorted((workspace.relative(f) for f in folders), reverse=True)


def grid_folder(workspace: Workspace, out: Path) -> Path:
    """Where Compare writes its grids: `compare/` beside the txt2img folder (A1111 keeps grids beside the images);
    refused when that lies outside the workspace (the txt2img folder is the workspace itself)."""
    grids = Path(out).parent / "compare"
    if not grids.resolve().is_relative_to(workspace.root):
        raise OnewordError(f"--out {workspace.relative(out)}: Compare writes its grids beside that folder, in "
                           f"{grids.resolve()}, outside the workspace {workspace.root} (refused); give a folder "
                           "inside it, e.g. outputs/txt2img")
    return workspace.resolve("--out", grids)


MAX_GRIDS = 1000
"""Most grids of one run and seed kept side by side (RUN-SEED.png, RUN-SEED-2.png ...)."""


def grid_file(grids: Path, run: str, seed: int) -> Path:
    """The file of a new grid of `run` at `seed`: `RUN-SEED.png` in `grids`, else the first free
    `RUN-SEED-N.png`, through `path_inside`: an earlier grid is kept, and a link found there is passed by, never
    written through."""
    for number in range(1, MAX_GRIDS + 1):
        name = f"{run}-{seed}.png" if number == 1 else f"{run}-{seed}-{number}.png"
        if not os.path.lexists(Path(grids) / name):
            return path_inside(grids, name, what="compare grid")
    raise OnewordError(f"{grids}: holds {MAX_GRIDS} grids of {run} at seed {seed} already; move some away")


def compare(workspace: Workspace, models: ModelCache, specs: list[FieldSpec], values: list[Any], run: str,
            word: str) -> tuple:
    """The checkpoint grid of a run (any kind), a column per step, the run's best one marked: (message, grid, its
    parameters)."""
    from oneword.embeddings.library import scan_embeddings
    from oneword.extra_networks import check_prompt
    from oneword.generate.compare import compare_checkpoints
    from oneword.generate.pnginfo import save_png
    from oneword.inspect.checkpoints import read_checkpoints

    try:
        s = settings_from(specs, values, workspace, special={"model": workspace.model})
        model, e_dir, h_dir, out = s.pop("model"), s.pop("embeddings_dir"), s.pop("hypernetwork_dir"), s.pop("out")
        l_dir = s.pop("lora_dir")
        folder = workspace.resolve("run", run)
        if not folder.is_dir():
            raise OnewordError(f"run {run}: no such folder")
        files = run_checkpoints(folder)
        if not files:
            where = ", ".join(f"{sub}/" for sub in checkpoint_folders())
            raise OnewordError(f"run {run}: no checkpoints (NAME-STEP.pt or .safetensors) in its {where} folders")
        outside = [p for p in files if not p.resolve().is_relative_to(workspace.root)]
        if outside:
            raise OnewordError(f"run {run}: {outside[0].name} leads outside the workspace {workspace.root} (refused)")
        checkpoints = read_checkpoints(files, word, default_word=folder.name)
        config = GenerateConfig(**s)
        check_prompt(config.prompt)
        grids = grid_folder(workspace, out)
        with models.use(model) as base:
            library = scan_embeddings(e_dir, base, within=workspace.root) if e_dir.is_dir() else None
            result = compare_checkpoints(base, config, checkpoints, library.loaded if library else {},
                                         tag_libraries(workspace, str(h_dir), str(l_dir)))
        path = grid_file(grids, folder.name, result.config.seed)
        try:
            save_png(result.grid, path, result.parameters, overwrite=False)
        except FileExistsError:
            raise OnewordError(f"{path} was written by another process meanwhile (not replaced); compare "
                               "again") from None
    except OnewordError as error:
        return message(str(error), error=True), None, ""
    best = "" if result.best_step is None else f" — step {result.best_step} ★ best, outlined in red"
    notes = "".join(f"note: {note}\n\n" for note in result.notes)
    return f"{notes}wrote {workspace.relative(path)}{best}", str(path), result.parameters


def build(workspace: Workspace, models: ModelCache, shown: gr.Tab | None = None) -> None:
    """The tab's layout and events; `shown` (the tab itself) refreshes the lists each time it is shown."""
    specs = generate_specs()
    by_name = {s.name: s for s in specs}
    fields = widgets([by_name["prompt"], by_name["negative"]], "generate")
    gr.Markdown(SYNTAX)
    with gr.Row():
        fields.update(widgets([by_name[n] for n in ("seed", "sampler", "steps", "cfg")], "generate"))
    with gr.Row():
        fields.update(widgets([by_name[n] for n in ("width", "height", "batch", "model")], "generate"))
    with gr.Accordion("Folders", open=False):
        fields.update(widgets([by_name[n] for n in ("embeddings_dir", "hypernetwork_dir", "lora_dir", "out")],
                              "generate"))
    found = gr.Markdown(lambda: available(workspace, "embeddings", "hypernetworks", "lora"),
                        elem_id="generate-available")
    with gr.Accordion("Inspect a file", open=False):
        listed = gr.Dropdown(choices=listed_files(workspace, "embeddings", "hypernetworks", "lora"), value=None,
                             label="File", info="What it is and which tools load it (oneword inspect).",
                             elem_id="generate-inspect-file")
        inspected = gr.Markdown(elem_id="generate-inspection")
    listed.change(lambda f: inspection(workspace, f), listed, inspected)
    ordered = [fields[s.name] for s in specs]
    with gr.Tabs():
        with gr.Tab("txt2img"):
            button = gr.Button("Generate", variant="primary", elem_id="generate-run")
            note = gr.Markdown(elem_id="generate-message")
            with gr.Row():
                gallery = galleries.gallery("Images", "generate-images")
                parameters = gr.Textbox(label="parameters", lines=6, elem_id="generate-parameters")
        with gr.Tab("Compare checkpoints"):
            with gr.Row():
                run = gr.Dropdown(choices=run_folders(workspace), value=None, label="Run", allow_custom_value=True,
                                  info="A log folder; its checkpoints (embeddings, hypernetworks, LoRAs) are compared.",
                                  elem_id="compare-run")
                word = widget(WORD, "compare")
                refresh = gr.Button("Refresh runs", elem_id="compare-refresh")
            compare_button = gr.Button("Compare", variant="primary", elem_id="compare-run-button")
            c_note = gr.Markdown(elem_id="compare-message")
            grid = galleries.picture("grid", "compare-grid")
            c_parameters = gr.Textbox(label="parameters", lines=4, elem_id="compare-parameters")
    folders = [fields["embeddings_dir"], fields["hypernetwork_dir"], fields["lora_dir"]]
    for source in folders:
        source.change(lambda e, h, lo: available(workspace, e, h, lo), folders, found)
        source.change(lambda e, h, lo: gr.update(choices=listed_files(workspace, e, h, lo)), folders, listed)
    def generate_form(*values: Any, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008 (Gradio injects it)
        return generate(workspace, models, specs, list(values), progress)

    button.click(generate_form, ordered, [note, gallery, parameters]).then(
        lambda e, h, lo: available(workspace, e, h, lo), folders, found, show_progress="hidden")
    compare_button.click(lambda r, w, *v: compare(workspace, models, specs, list(v), r, w), [run, word, *ordered],
                         [c_note, grid, c_parameters])
    refresh.click(lambda: gr.update(choices=run_folders(workspace)), None, run)
    if shown is not None:  # what a training or a Create left since the page was drawn
        shown.select(lambda e, h, lo: (available(workspace, e, h, lo), gr.update(choices=run_folders(workspace))),
                     folders, [found, run], show_progress="hidden")
        shown.select(lambda e, h, lo: gr.update(choices=listed_files(workspace, e, h, lo)), folders, listed,
                     show_progress="hidden")
