"""`oneword train` through the real entry point: an option for every TrainConfig field, settings from a TOML file,
the kind's defaults, and bad input in one clear line."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch
import typer
from cli_helpers import run_in_process
from diffusers_parity import assert_same_as_diffusers
from train_helpers import settings, write_images

import oneword
from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import load_embedding_file, save_embedding
from oneword.fielddocs import field_docs
from oneword.generate.pnginfo import read_parameters
from oneword.models.tiny import build_tiny
from oneword.train.config import TrainConfig, option_name
from oneword.train.loop import train

NOT_FIELDS = {"config_file": "--config", "device": "--device"}
"""The only options of `oneword train` that are no TrainConfig field."""
NOT_OPTIONS = {"extra"}
"""The only TrainConfig field that is no option of `oneword train` (NAME is its argument)."""


def _base_args(tmp_path, *extra: str) -> list[str]:
    return ["train", "zqx", "--model", "tiny-sd1", "--data", str(tmp_path / "data"), "--log-dir", str(tmp_path / "log"),
            "--embeddings-dir", str(tmp_path / "emb"), *extra]


def test_settings_come_from_the_toml_file_and_options_override_them(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    config = tmp_path / "run.toml"
    config.write_text('learn-rate = "0.01:2, 0.002"\nmax_steps = 3\nbatch_size = 2\nsave_every = 0\n'
                      'preview_every = 0\ntemplate = "subject"\nseed = 7\n', encoding="utf-8")
    code, out, err = run_in_process(monkeypatch, capsys, *_base_args(tmp_path, "--config", str(config), "--seed", "9"))
    assert code == 0, err
    assert out.splitlines()[-1].startswith("log folder: ")
    folder = tmp_path / "log"
    saved = json.loads(next(folder.rglob("settings-*.json")).read_text())
    assert (saved["learn_rate"], saved["max_steps"], saved["template"], saved["seed"]) == ("0.01:2, 0.002", 3, "subject", 9)
    assert (tmp_path / "emb" / "zqx.pt").is_file()


def _nothing_written(tmp_path) -> bool:
    return not (tmp_path / "log").exists() and not (tmp_path / "emb").exists()


@pytest.mark.parametrize(
    ("prepare", "extra", "message"),
    [
        ("none", (), "--data {data}: no such folder"),
        ("empty", (), "--data {data}: no images in it"),
        ("garbage", (), "--data {data}: none of its 2 images can be read"),
        ("images", ("--template", "subjekt"), "--template 'subjekt': no such file, and not a shipped template"),
        ("images", ("--learn-rate", "0.005:100, 1e-3:abc"), "entry 2 '1e-3:abc': step 'abc' is not a whole number"),
        ("images", ("--width", "60"), "--width must be a positive multiple of 8, but is 60"),
        ("images", ("--latent-sampling", "sometimes"), "--latent-sampling must be one of once, deterministic, random"),
        ("images", ("--config", "{tmp}/missing.toml"), "--config {tmp}/missing.toml: no such file"),
        ("images", ("--stop", "never"), "--stop must be one of max, auto, not 'never'"),
        ("images", ("--score", "clip"), "--score clip needs --clip PATH"),
        ("images", ("--clip", "{tmp}/no-clip"), "--clip {tmp}/no-clip: no such folder"),
        ("images", ("--score", "judge:star"), "--score judge:star: the model tiny-sd1 is not a toy model"),
        ("images", ("--stop", "auto", "--stop-signal", "clip_image"), "--stop-signal clip_image: no scorer"),
        ("images", ("--prediction-type", "v"), "--prediction-type must be one of epsilon, v_prediction, not 'v'"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys, prepare, extra, message):
    data = tmp_path / "data"
    if prepare == "empty":
        data.mkdir()
    elif prepare == "garbage":
        data.mkdir()
        (data / "a.png").write_bytes(b"not a png")
        (data / "b.jpg").write_bytes(b"")
    elif prepare == "images":
        write_images(data)
    extra = tuple(e.format(tmp=tmp_path) for e in extra)
    code, out, err = run_in_process(monkeypatch, capsys, *_base_args(tmp_path, *extra))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message.format(data=data, tmp=tmp_path) in lines[0]
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("name", ["../../x", "a/b", "my word"])
def test_a_name_that_is_no_plain_word_is_refused_not_rewritten(tmp_path, monkeypatch, capsys, name):
    write_images(tmp_path / "data")
    args = _base_args(tmp_path)
    args[1] = name
    code, out, err = run_in_process(monkeypatch, capsys, *args)
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith(f"error: NAME {name!r}: has ") and "(a name holds only letters, digits, _, - and ." in err
    assert _nothing_written(tmp_path) and not list(tmp_path.glob("**/.*.pt")) and not (tmp_path.parent / "x").exists()


def test_an_embedding_for_another_model_width_is_refused(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    save_embedding(Embedding(name="zqx", vectors={"*": torch.zeros(1, 768)}), tmp_path / "emb" / "zqx.pt")
    code, out, err = run_in_process(monkeypatch, capsys, *_base_args(tmp_path))
    assert code == 1
    assert "zqx.pt: trained for another model, it does not fit tiny-sd1: width 768 does not match" in err
    assert not (tmp_path / "log").exists()
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["zqx.pt"]


def test_a_checkpoint_loads_in_diffusers_with_the_same_prompt_embeddings(tmp_path):
    model = build_tiny("sd1", seed=0)
    finished = train(settings(tmp_path, max_steps=6, save_every=3), model)
    path = finished.log_folder / "embeddings" / "zqx-3.pt"
    assert_same_as_diffusers(model, "a photo of zqx, smiling", "zqx", path,
                             lambda pipe: pipe.load_textual_inversion(str(path), token="zqx"))


def _train_commands() -> list:
    from oneword.cli import _register, app

    _register()
    group = typer.main.get_command(app)
    return [group.commands["train"], group.commands["train-hypernetwork"]]


def test_every_config_field_is_an_option_with_its_docstring_and_every_option_a_field():
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - NOT_OPTIONS
    docs, defaults = field_docs(TrainConfig), TrainConfig()
    for command in _train_commands():
        params = {p.name: p for p in command.params}
        assert set(params) - set(NOT_FIELDS) == fields, command.name
        assert params["name"].param_type_name == "argument" and params["name"].help == docs["name"]
        assert (params["data"].opts, params["model"].opts, params["resume"].secondary_opts) == (
            ["--data", "-d"], ["--model", "-m"], [])
        assert [params[n].secondary_opts for n in ("keep_size", "shuffle_tags", "half_precision", "flash_attention",
                                                   "compile")] == [
            ["--resize"], ["--keep-tag-order"], ["--full-precision"], ["--classic-attention"], ["--no-compile"]]
        for name in fields - {"name"}:
            option = params[name]
            assert option_name(name) in option.opts, name
            assert option.help.replace("\\[", "[").startswith(docs[name]), name
            value = getattr(defaults, name)
            if isinstance(value, (int, float, str)) and not isinstance(value, bool) and value != "":
                assert f"[default: {value}" in option.help.replace("\\[", "["), name


def test_train_help_lists_exactly_the_fields_options(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "400")
    code, out, err = run_in_process(monkeypatch, capsys, "train", "--help")
    assert code == 0, err
    listed = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", out))
    params = {p.name: p for p in _train_commands()[0].params}
    expected = {*NOT_FIELDS.values(), "--help"}
    for name in {f.name for f in dataclasses.fields(TrainConfig)} - NOT_OPTIONS - {"name"}:
        expected |= {o for o in (*params[name].opts, *params[name].secondary_opts) if o.startswith("--")}
        assert option_name(name) in listed, name
    assert listed == expected
    assert "[default: 0.005; 0.00001 for a hypernetwork; 0.0001 for a lora; 0.0001 for a pivotal]" in out and "[default: 7.0]" in out


def test_an_unknown_option_gets_clicks_usage_error_in_one_line(monkeypatch, capsys):
    code, out, err = run_in_process(monkeypatch, capsys, "train", "--no-such-option")
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: No such option: --no-such-option")
    assert lines[0].endswith(" train --help` lists the options)")


def _short(tmp_path, *extra: str, command: str = "train") -> list[str]:
    return [command, *_base_args(tmp_path, "--max-steps", "1", "--save-every", "0", "--preview-every", "0",
                                 "--validate-every", "0", *extra)[1:]]


def _saved_settings(tmp_path) -> dict:
    return json.loads(next((tmp_path / "log").rglob("settings-*.json")).read_text())


def test_the_preview_options_reach_the_run_and_its_previews(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    args = _short(tmp_path, "--preview-every", "1", "--preview-cfg", "3", "--preview-steps", "2",
                  "--preview-sampler", "ddim", "--preview-negative", "blurry")
    code, _, err = run_in_process(monkeypatch, capsys, *args)
    assert code == 0, err
    saved = _saved_settings(tmp_path)
    assert (saved["preview_cfg"], saved["preview_steps"], saved["preview_sampler"], saved["preview_negative"]) == (
        3.0, 2, "ddim", "blurry")
    [image] = (tmp_path / "log").rglob("images/zqx-1.png")
    _, negative, fields = read_parameters(image).splitlines()
    assert negative == "Negative prompt: blurry"
    assert fields.startswith("Steps: 2, Sampler: DDIM, CFG scale: 3, Seed: 0,")


def test_the_prediction_type_reaches_the_training_step(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    trained = {}
    for prediction in ("v_prediction", None):
        run = tmp_path / str(prediction)
        args = _short(run, "--data", str(tmp_path / "data"), *(["--prediction-type", prediction] if prediction else []))
        code, _, err = run_in_process(monkeypatch, capsys, *args)
        assert code == 0, err
        assert _saved_settings(run)["prediction_type"] == prediction
        trained[prediction] = load_embedding_file(run / "emb" / "zqx.pt").vectors["*"]
    model = oneword.load_base("tiny-sd1")
    model.scheduler_config["prediction_type"] = "v_prediction"
    config = TrainConfig(name="zqx", data=tmp_path / "data", model="tiny-sd1", max_steps=1, save_every=0,
                         preview_every=0, validate_every=0, log_dir=tmp_path / "lib" / "log",
                         embeddings_dir=tmp_path / "lib" / "emb")
    library = load_embedding_file(train(config, model).embedding_path).vectors["*"]
    assert torch.equal(trained["v_prediction"], library)  # the step trained on v-prediction's target
    assert not torch.equal(trained["v_prediction"], trained[None])


def test_a_config_of_a_kind_has_that_kinds_rate_and_template():
    assert (TrainConfig().learn_rate, TrainConfig().template) == ("0.005", "subject_filewords")
    hypernetwork = TrainConfig(kind="hypernetwork")
    assert (hypernetwork.learn_rate, hypernetwork.template) == ("0.00001", "hypernetwork")
    assert hypernetwork.settings()["learn_rate"] == "0.00001"
    given = TrainConfig(kind="hypernetwork", learn_rate="0.005", template="subject")
    assert (given.learn_rate, given.template) == ("0.005", "subject")  # what is asked for is kept


@pytest.mark.parametrize("how", ["--kind", "train-hypernetwork", "toml"])
def test_the_command_line_and_toml_give_a_hypernetwork_the_same_defaults(tmp_path, monkeypatch, capsys, how):
    write_images(tmp_path / "data")
    (tmp_path / "run.toml").write_text('kind = "hypernetwork"\n', encoding="utf-8")
    extra = {"--kind": ("--kind", "hypernetwork"), "toml": ("--config", str(tmp_path / "run.toml"))}.get(how, ())
    command = "train-hypernetwork" if how == "train-hypernetwork" else "train"
    args = _short(tmp_path, "--hypernetwork-dir", str(tmp_path / "hn"), *extra, command=command)
    code, _, err = run_in_process(monkeypatch, capsys, *args)
    assert code == 0, err
    saved, expected = _saved_settings(tmp_path), TrainConfig(kind="hypernetwork")
    assert (saved["kind"], saved["learn_rate"], saved["template"]) == ("hypernetwork", expected.learn_rate,
                                                                     expected.template)
