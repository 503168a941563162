"""The forms come from the configs: every TrainConfig option is on the Train tab once, with the config's default
and help, and the values a page sends become the same dataclass the command line fills."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from oneword.prep.captions import TaggerSettings
from oneword.train.config import TrainConfig
from oneword.ui.fields import field_docs
from oneword.ui.paths import Workspace
from oneword.ui.tabs import prepare, train


def _rate_and_template(kind: str, model: str = "toy") -> tuple[str, str]:
    shown = train.form_defaults(kind, model)
    return shown["learn_rate"], shown["template"]


def _kind_values(kind: str, model: str = "toy") -> list:
    """What the kind-only fields (train.kind_options()) show for `kind` on `model`."""
    shown = train.form_defaults(kind, model)
    return [shown[name] for name in train.kind_options()]


def _with_pictures(space: Workspace) -> Workspace:
    """The workspace with two pictures in datasets/star (Start checks the data folder)."""
    from PIL import Image

    folder = space.root / "datasets" / "star"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(folder / f"{i}.png")
    return space


def test_every_train_option_is_on_the_form_once_with_its_default_and_help():
    names = [n for group in train.GROUPS.values() for n in group]
    fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "extra"]
    assert sorted(names) == sorted(fields) and len(names) == len(set(names))
    specs = {s.name: s for s in train.train_specs()}
    defaults = TrainConfig()
    docs = field_docs(TrainConfig)
    for name in fields:
        assert specs[name].default == getattr(defaults, name), name
        assert specs[name].help, f"{name} has no help"
        if name in docs:
            assert specs[name].help == docs[name]


def test_every_form_reads_its_help_from_the_config_and_nothing_from_the_command_line():
    code = ("import sys\n"
            "from oneword.ui.tabs import create, generate, prepare, train\n"
            "specs = [*train.train_specs(), *prepare.prepare_specs(), *generate.generate_specs(),\n"
            "         *create.embedding_specs(), *create.hypernetwork_specs()]\n"
            "print([s.name for s in specs if not s.help])\n"
            "print(sorted(m for m in sys.modules if m.startswith('oneword.cli')))\n")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert result.stdout.splitlines() == ["[]", "[]"], result.stderr
    helps = {s.name: s.help for s in prepare.prepare_specs()}
    assert (helps["width"], helps["focal_face"]) == ("Output width, a multiple of 8.", "Focal crop: weight of faces.")
    assert helps["character_threshold"] == field_docs(TaggerSettings)["character_threshold"]


def test_the_page_values_make_the_cli_dataclass(tmp_path):
    space = _with_pictures(Workspace.at(tmp_path))
    specs = train.train_specs()
    values = []
    for spec in specs:
        value = {"name": "zq", "data": "datasets/star", "max_steps": 30, "width": "", "clip": None}.get(
            spec.name, spec.default)
        values.append(value.as_posix() if isinstance(value, Path) else value)
    config = train.train_config(space, specs, values)
    expected = TrainConfig(name="zq", data=space.root / "datasets" / "star", max_steps=30,
                           log_dir=space.root / "textual_inversion", embeddings_dir=space.root / "embeddings",
                           hypernetwork_dir=space.root / "hypernetworks", lora_dir=space.root / "lora")
    assert config == expected


def test_a_hypernetwork_gets_a1111s_rate_and_template():
    assert _rate_and_template("hypernetwork") == ("0.00001", "hypernetwork")
    assert _rate_and_template("embedding") == ("0.005", "subject_filewords")


def test_a_hypernetwork_from_the_page_gets_the_kinds_defaults_as_the_command_line_does(tmp_path):
    space = _with_pictures(Workspace.at(tmp_path))
    specs = train.train_specs()
    given = {"name": "zq", "kind": "hypernetwork", "data": "datasets/star", "learn_rate": "", "template": "",
             "width": "", "clip": None}
    values = [given.get(s.name, s.default) for s in specs]
    config = train.train_config(space, specs, [v.as_posix() if isinstance(v, Path) else v for v in values])
    assert (config.learn_rate, config.template, config.prediction_type) == ("0.00001", "hypernetwork", None)
    assert _rate_and_template("hypernetwork") == (config.learn_rate, config.template)


def test_a_lora_from_the_page_gets_its_settings_and_another_kind_ignores_them(tmp_path):
    space = _with_pictures(Workspace.at(tmp_path))
    specs = train.train_specs()
    lora = dict(zip(train.kind_options(), _kind_values("lora", "tiny-sd1"), strict=True))
    assert lora == {"rank": 16, "alpha": 8.0, "targets": "attn-mlp", "conv_rank": "", "conv_alpha": "",
                    "train_text_encoder": True, "text_encoder_lr": "0.00005", "save_precision": "fp16",
                    "vectors_lr": "", "ti_frac": ""}
    on_toy = dict(zip(train.kind_options(), _kind_values("lora", "toy"), strict=True))
    assert on_toy == {**lora, "text_encoder_lr": "0.003"}  # the toy model's LoRA rates
    assert _kind_values("embedding") == ["", "", "", "", "", False, "", "", "", ""]
    pivotal = dict(zip(train.kind_options(), _kind_values("pivotal"), strict=True))
    assert pivotal == {**lora, "vectors_lr": "0.01", "ti_frac": 1.0}
    given = {"name": "zq", "kind": "lora", "data": "datasets/star", "learn_rate": "", "template": "", "width": "",
             "clip": None, **lora, "rank": 4, "train_text_encoder": False}
    values = [given.get(s.name, s.default) for s in specs]
    config = train.train_config(space, specs, [v.as_posix() if isinstance(v, Path) else v for v in values])
    assert (config.rank, config.alpha, config.train_text_encoder, config.conv_rank) == (4, 8.0, False, None)
    assert config.lora_dir == space.root / "lora"
    values = [{**given, "kind": "embedding"}.get(s.name, s.default) for s in specs]
    config = train.train_config(space, specs, [v.as_posix() if isinstance(v, Path) else v for v in values])
    assert (config.kind, config.rank, config.train_text_encoder) == ("embedding", None, None)


def test_a_name_that_is_no_plain_word_is_refused_on_the_page_as_on_the_command_line(tmp_path):
    from oneword.ui.tabs import create

    space = _with_pictures(Workspace.at(tmp_path))
    specs = train.train_specs()
    values = [{"name": "a/b", "data": "datasets/star", "width": "", "clip": None}.get(s.name, s.default)
              for s in specs]
    note = train.start(space, None, specs, "cpu", [v.as_posix() if isinstance(v, Path) else v for v in values])
    assert "NAME 'a/b': has '/' (a name holds only letters, digits, _, - and ." in note
    e_specs = create.embedding_specs()
    e_values = [{"name": "my word"}.get(s.name, s.default) for s in e_specs]
    note = create.create_embedding(space, None, e_specs, [v.as_posix() if isinstance(v, Path) else v for v in e_values])
    assert "NAME 'my word': has space (a name holds only letters, digits, _, - and ." in note
    assert not (tmp_path / "embeddings").exists()


def _form(space_values: dict) -> list:
    specs = train.train_specs()
    values = [{"width": "", "clip": None, **space_values}.get(s.name, s.default) for s in specs]
    return [v.as_posix() if isinstance(v, Path) else v for v in values]


def test_start_names_every_problem_before_anything_starts(tmp_path):
    from oneword.ui.jobs import Jobs

    space, jobs = Workspace.at(tmp_path), Jobs(lambda *a, **k: None)
    values = _form({"name": "a/b", "data": "datasets/none", "max_steps": 0, "batch_size": "two", "save_every": -1})
    note = train.start(space, jobs, train.train_specs(), "cpu", values)
    assert note.startswith("**error:** ") and jobs.current is None
    for problem in ("--batch-size must be a number, but is 'two'", "NAME 'a/b': has '/'",
                    "--max-steps must be at least 1, but is 0", "--save-every must be at least 0, but is -1",
                    f"--data {tmp_path / 'datasets' / 'none'}: no such folder"):
        assert problem in note, problem


def test_a_name_trained_before_is_refused_by_start_not_after_it(tmp_path):
    import torch

    from oneword.embeddings.embedding import Embedding
    from oneword.embeddings.formats import save_embedding
    from oneword.models.tiny import build_tiny
    from oneword.ui.jobs import Jobs

    space, jobs = _with_pictures(Workspace.at(tmp_path)), Jobs(lambda *a, **k: build_tiny("sd1", seed=0))
    save_embedding(Embedding(name="zq", vectors={"*": torch.zeros(1, 64)}, step=7), tmp_path / "embeddings" / "zq.pt")
    note = train.start(space, jobs, train.train_specs(), "cpu",
                       _form({"name": "zq", "data": "datasets/star", "model": "tiny-sd1", "max_steps": 2}))
    assert note == (f"**error:** {tmp_path / 'embeddings' / 'zq.pt'} has been trained for 7 steps already: tick "
                    "Resume to continue it, or choose another name")


def test_prepare_starts_at_the_toy_size_keeps_captions_and_lists_every_skipped_picture(tmp_path):
    from PIL import Image

    space = Workspace.at(tmp_path)
    src = tmp_path / "pictures"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (64, 64), (80 * i, 90, 200)).save(src / f"ball{i}.png")
    (src / "ball0.txt").write_text("a blue ball on grass", encoding="utf-8")
    (src / "broken.png").write_bytes(b"not a picture")
    specs = prepare.prepare_specs()
    values = [prepare.FORM_DEFAULTS.get(s.name, s.default) for s in specs]
    note, _, _ = prepare.run(space, specs, [v.as_posix() if isinstance(v, Path) else v for v in values], "")
    lines = note.splitlines()
    assert lines[0].startswith("3 pictures processed, 1 skipped, ")
    assert len(lines) == 2 and lines[1].startswith("- skipped pictures/broken.png: ")
    captions = [p.read_text(encoding="utf-8").strip() for p in (tmp_path / "datasets").glob("*.txt")]
    assert sorted(captions) == ["a blue ball on grass", "ball1", "ball2"]
    assert {Image.open(p).size for p in (tmp_path / "datasets").glob("*.png")} == {(64, 64)}
    assert [prepare.model_size(m) for m in ("toy", "tiny-sd1", "tiny-sd2", "tiny-sdxl")] == [64, 512, 768, 1024]


def _switch(kind: str, model: str, **shown) -> dict:
    """The fields that follow the kind and the model after choosing them, from the embedding form's fields and
    `shown` (what the user left or typed)."""
    fields = {**train.form_defaults("embedding"), **shown}
    return dict(zip(fields, train.defaults_switch(kind, model, *fields.values()), strict=True))


def test_choosing_a_kind_keeps_a_learning_rate_the_user_typed():
    assert _switch("hypernetwork", "toy")["learn_rate"] == "0.00001"
    assert _switch("hypernetwork", "toy")["template"] == "hypernetwork"
    back = _switch("embedding", "toy", learn_rate="0.00001", template="hypernetwork")
    assert (back["learn_rate"], back["template"]) == ("0.005", "subject_filewords")
    typed = _switch("hypernetwork", "toy", learn_rate="0.002:100, 0.0005", template="my_lines.txt", batch_size="3")
    assert (typed["learn_rate"], typed["template"], typed["batch_size"]) == ("0.002:100, 0.0005", "my_lines.txt", "3")
    assert _switch("lora", "toy", learn_rate="")["learn_rate"] == _rate_and_template("lora")[0]


def test_a_lora_on_the_toy_model_gets_the_toy_rates_and_batch_and_another_model_kohyas():
    on_toy = _switch("lora", "toy")
    assert (on_toy["learn_rate"], on_toy["text_encoder_lr"], on_toy["batch_size"]) == ("0.003", "0.003", 8)
    on_sd = _switch("lora", "models/sd15.safetensors", **on_toy)  # the model changed after the kind
    assert (on_sd["learn_rate"], on_sd["text_encoder_lr"], on_sd["batch_size"]) == ("0.0001", "0.00005", 1)
    kept = _switch("lora", "tiny-sd1", **{**on_toy, "learn_rate": "0.0002", "batch_size": "4"})
    assert (kept["learn_rate"], kept["text_encoder_lr"], kept["batch_size"]) == ("0.0002", "0.00005", "4")
    assert _switch("embedding", "toy", **on_toy)["batch_size"] == 1 and _switch("embedding", "toy")["rank"] == ""


def test_showing_generate_or_runs_lists_what_was_made_since_the_page_was_drawn(tmp_path):
    import torch

    from oneword.embeddings.embedding import Embedding
    from oneword.embeddings.formats import save_embedding
    from oneword.ui.app import build_app
    from oneword.ui.jobs import Jobs

    app = build_app(Workspace.at(tmp_path), Jobs(lambda *a, **k: None))
    shown = {tuple(getattr(o, "elem_id", None) for o in fn.outputs): fn.fn for fn in app.fns.values()
             if any(event == "select" for _, event in fn.targets)}
    assert set(shown) == {("generate-available", "compare-run"), ("generate-inspect-file",), ("runs-run",)}
    run = tmp_path / "textual_inversion" / "2026-01-02" / "zq"
    save_embedding(Embedding(name="zq", vectors={"*": torch.zeros(1, 64)}, step=5), run / "embeddings" / "zq-5.pt")
    (run / "settings-2026-01-02-10-00-00.json").write_text("{}", encoding="utf-8")
    save_embedding(Embedding(name="zq", vectors={"*": torch.zeros(1, 64)}, step=5), tmp_path / "embeddings" / "zq.pt")
    found, runs = shown[("generate-available", "compare-run")]("embeddings", "hypernetworks", "lora")
    assert found.startswith("embeddings: `zq` — ")
    assert runs["choices"] == ["textual_inversion/2026-01-02/zq"]
    assert shown[("runs-run",)]()["choices"] == ["textual_inversion/2026-01-02/zq"]


def test_the_step_counts_follow_the_model_and_keep_what_the_user_typed(tmp_path):
    from oneword.ui.app import build_app
    from oneword.ui.jobs import Jobs

    app = build_app(Workspace.at(tmp_path), Jobs(lambda *a, **k: None))
    ids = ("train-max-steps", "train-save-every", "train-preview-every", "train-validate-every")
    shown = {b.elem_id: b.value for b in app.blocks.values() if getattr(b, "elem_id", None) in ids}
    assert [shown[i] for i in ids] == [400, 50, 50, 50]  # the form starts on the toy model
    (switch,) = [fn.fn for fn in app.fns.values() if [getattr(b, "elem_id", None) for b in fn.outputs] == list(ids)]
    assert switch("tiny-sdxl", 400, 50, 50, 50) == (100000, 500, 500, 50)
    assert switch("models/sd15.safetensors", 400, 50, 50, 50) == (100000, 500, 500, 50)
    assert switch("toy", 100000, 500, 500, 50) == (400, 50, 50, 50)
    assert switch("tiny-sd1", 1000, 50, 25, "") == (1000, 500, 25, 50)  # typed: 1000 and 25
    assert switch("toy", 1000, 500, "x", 50) == (1000, 50, "x", 50)
