"""Every form field reads as words ("Learning rate"), its help names the command line's spelling of it, and the
messages a form shows tell the user which control to use ("tick Overwrite"), while the command line keeps its own."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from oneword.ui import labels
from oneword.ui.app import build_app
from oneword.ui.jobs import Jobs, JobState
from oneword.ui.models import ModelCache
from oneword.ui.paths import Workspace
from oneword.ui.tabs import create, generate, prepare, train


def _cli_params() -> dict[str, set[str]]:
    """Each command's options and arguments as its help spells them."""
    import typer.main

    from oneword.cli import _register, app

    _register()
    group = typer.main.get_command(app)
    return {name: {p.opts[0] if p.param_type_name == "option" else p.name.upper() for p in command.params}
            for name, command in group.commands.items() if not hasattr(command, "commands")}


def test_every_field_has_a_words_label_and_its_help_names_an_option_of_its_command(tmp_path):
    forms = {"train": [*train.train_specs(), train.DEVICE], "preprocess": prepare.prepare_specs(),
             "check": [prepare.CHECK_NAME], "generate": generate.generate_specs(), "compare": [generate.WORD],
             "create-embedding": create.embedding_specs(), "create-hypernetwork": create.hypernetwork_specs()}
    params = _cli_params()
    for command, specs in forms.items():
        for spec in specs:
            assert spec.name in labels.LABELS, f"{spec.name} has no label in oneword.ui.labels.LABELS"
            assert spec.flag in params[command], (command, spec.name, spec.flag)
    app = build_app(Workspace.at(tmp_path), Jobs(lambda *a, **k: None))
    fields = {b.elem_id: b for b in app.blocks.values() if isinstance(b, gr.components.FormComponent) and b.elem_id}
    (rate,) = [s for s in train.train_specs() if s.name == "learn_rate"]
    shown = {i: (f.label, f.info) for i, f in fields.items() if i.startswith(("train-", "prepare-", "generate-",
                                                                                  "compare-", "embedding-", "hypernetwork-"))}
    assert shown["train-learn-rate"] == ("Learning rate", f"{rate.help} [default: 0.005] (--learn-rate)")
    assert shown["train-save-every"][0] == "Save every (steps)"
    assert shown["train-save-every"][1].endswith("[default: 500] (--save-every)")
    assert shown["prepare-src"] == ("Source folder", "Folder of source pictures (only read, never written). (SRC)")
    assert shown["train-name"][1].endswith("(NAME)") and shown["prepare-name"][1].endswith("(--name)")
    assert shown["compare-word"][0] == "Word" and shown["train-device"] == ("Device", "auto, cpu or cuda. [default: auto] (--device)")
    for elem_id, (label, _) in shown.items():
        assert label and not label.startswith("-") and "_" not in label, (elem_id, label)


def test_messages_name_the_forms_control_and_the_command_line_keeps_its_flag(tmp_path):
    from PIL import Image

    from oneword.prep.preprocess import PreprocessConfig

    space = Workspace.at(tmp_path)
    (tmp_path / "pictures").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "pictures" / "a.png")
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "old.png").write_bytes(b"")
    specs = prepare.prepare_specs()
    values = [prepare.FORM_DEFAULTS.get(s.name, s.default) for s in specs]
    note, _, _ = prepare.run(space, specs, [v.as_posix() if isinstance(v, Path) else v for v in values], "")
    assert note == f"**error:** DST {tmp_path / 'datasets'} is not empty; choose another folder or tick Overwrite"
    cli = PreprocessConfig(src=tmp_path / "pictures", dst=tmp_path / "datasets").problems()
    assert cli == [f"DST {tmp_path / 'datasets'} is not empty; choose another folder or pass --overwrite"]

    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "zq.pt").write_bytes(b"")
    e_specs = create.embedding_specs()
    e_values = [{"name": "zq"}.get(s.name, s.default) for s in e_specs]
    note = create.create_embedding(space, ModelCache(), e_specs,
                                   [v.as_posix() if isinstance(v, Path) else v for v in e_values])
    assert note == f"**error:** {tmp_path / 'embeddings' / 'zq.pt'} already exists (tick Overwrite to replace it)"

    stopped = JobState(status="finished", name="zq", step=30, message="stopped at step 30: saved x-30.pt; continue "
                       "with --resume")
    assert train.redraw(stopped, {})[1] == ("**finished** zq: stopped at step 30: saved x-30.pt; continue with Resume "
                                            "ticked")


def test_only_an_instruction_speaks_of_the_control():
    said = labels.for_form("--stop auto watches val_loss here: set --validate-every above 0, or give a --score; "
                           "--max-steps must be at least 1, but is 0; pass --debug")
    assert said == ("--stop auto watches val_loss here: set Validate every (steps) above 0, or give a Checkpoint "
                    "score; --max-steps must be at least 1, but is 0; pass --debug")


def test_an_option_given_with_its_value_in_brackets_reads_as_the_control_and_its_value():
    said = labels.for_form("stopped at step 50: features stopped improving (--stop auto); saved zq-30.pt")
    assert said == "stopped at step 50: features stopped improving (When to stop: auto); saved zq-30.pt"


def test_the_status_names_the_files_of_the_workspace_relative_to_it(tmp_path):
    space = Workspace.at(tmp_path)
    done = JobState(status="finished", name="zq", step=50, message=f"stopped at step 50: saved it as {space.root}/"
                    f"embeddings/zq.pt — log folder {space.root}/textual_inversion/2026-12-02/zq; elsewhere /data/x.pt")
    assert train.redraw(done, {}, space)[1] == ("**finished** zq: stopped at step 50: saved it as embeddings/zq.pt — "
                                                "log folder textual_inversion/2026-12-02/zq; elsewhere /data/x.pt")
