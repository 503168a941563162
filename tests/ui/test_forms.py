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
    space = Workspace.at(tmp_path)
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
    assert train.kind_defaults("hypernetwork") == ("0.00001", "hypernetwork")
    assert train.kind_defaults("embedding") == ("0.005", "subject_filewords")


def test_a_hypernetwork_from_the_page_gets_the_kinds_defaults_as_the_command_line_does(tmp_path):
    space = Workspace.at(tmp_path)
    specs = train.train_specs()
    given = {"name": "zq", "kind": "hypernetwork", "data": "datasets/star", "learn_rate": "", "template": "",
             "width": "", "clip": None}
    values = [given.get(s.name, s.default) for s in specs]
    config = train.train_config(space, specs, [v.as_posix() if isinstance(v, Path) else v for v in values])
    assert (config.learn_rate, config.template, config.prediction_type) == ("0.00001", "hypernetwork", None)
    assert train.kind_defaults("hypernetwork") == (config.learn_rate, config.template)


def test_a_lora_from_the_page_gets_its_settings_and_another_kind_ignores_them(tmp_path):
    space = Workspace.at(tmp_path)
    specs = train.train_specs()
    lora = dict(zip(train.kind_options(), train.kind_values("lora"), strict=True))
    assert lora == {"rank": 16, "alpha": 8.0, "targets": "attn-mlp", "conv_rank": "", "conv_alpha": "",
                    "train_text_encoder": True, "text_encoder_lr": "0.00005", "save_precision": "fp16",
                    "vectors_lr": "", "ti_frac": ""}
    assert train.kind_values("embedding") == ["", "", "", "", "", False, "", "", "", ""]
    pivotal = dict(zip(train.kind_options(), train.kind_values("pivotal"), strict=True))
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
