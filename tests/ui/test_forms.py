"""The forms come from the configs: every TrainConfig option is on the Train tab once, with the config's default
and help, and the values a page sends become the same dataclass the command line fills."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from oneword.train.config import TrainConfig
from oneword.ui.fields import field_docs
from oneword.ui.paths import Workspace
from oneword.ui.tabs import train


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


def test_cli_help_drops_the_default_the_form_shows_itself():
    from oneword.cli.prep import preprocess_command
    from oneword.ui.fields import cli_help

    helps = cli_help(preprocess_command)
    assert helps["width"] == "Output width, a multiple of 8."
    assert helps["focal_face"] == "Focal crop: weight of faces."


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
                           hypernetwork_dir=space.root / "hypernetworks")
    assert config == expected


def test_a_hypernetwork_gets_a1111s_rate_and_template():
    assert train.kind_defaults("hypernetwork") == ("0.00001", "hypernetwork")
    assert train.kind_defaults("embedding") == ("0.005", "subject_filewords")
