"""`oneword --help`, every command's `--help` and the command-line mistakes the parser itself refuses answer at once:
none of them imports torch, diffusers, transformers, gradio or matplotlib (seconds and hundreds of MB before the
first line). Each check runs in a fresh interpreter, so that what this test process imported does not count."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from oneword.train.config import TrainConfig

HEAVY = ("torch", "diffusers", "transformers", "gradio", "matplotlib")

_RUN = r"""
import contextlib, io, json, sys

import typer

from oneword.cli import _register, app, main

HEAVY = {heavy!r}


def run(args):
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["oneword", *args]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as e:
            code = e.code
    return {{"args": args, "code": code, "out": out.getvalue(), "err": err.getvalue()}}


def paths(command, path):
    yield path
    for name, sub in getattr(command, "commands", {{}}).items():
        yield from paths(sub, [*path, name])


_register()
command_lines = [[*path, "--help"] for path in paths(typer.main.get_command(app), [])] if {every!r} else []
results = [run(args) for args in [*command_lines, *{extra!r}]]
print(json.dumps({{"results": results, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}}))
"""


def _oneword(*command_lines: list[str], every_help: bool = False) -> tuple[list[dict], list[str]]:
    """Run each command line through `main()` in one new interpreter (with `every_help`, first `--help` of the root
    and of every registered command): each one's exit code and output, and the heavy modules imported by the end."""
    code = _RUN.format(heavy=HEAVY, every=every_help, extra=[list(c) for c in command_lines])
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    return answer["results"], answer["heavy"]


def test_every_help_answers_without_the_heavy_libraries():
    results, heavy = _oneword(every_help=True)
    assert heavy == []
    by_command = {" ".join(r["args"][:-1]): r for r in results}
    assert {"", "train", "train-hypernetwork", "train-lora", "generate", "toy report", "ui"} <= set(by_command)
    assert all(r["code"] == 0 and "Usage:" in r["out"] for r in results), [r for r in results if r["code"]]
    root = by_command[""]["out"]
    assert all(name.split()[0] in root for name in by_command if name)
    options = {f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(TrainConfig)} - {"--name", "--extra"}
    for command in ("train", "train-hypernetwork", "train-lora"):
        shown = by_command[command]["out"]
        assert [o for o in sorted(options) if o not in shown] == []
        assert "NAME" in shown and "--config" in shown and "--device" in shown


@pytest.mark.parametrize("args, message", [
    (["--no-such-option"], "No such option"),
    (["trian"], "No such command"),
    (["train"], "Missing argument"),
    (["train", "zqx", "--bogus"], "No such option"),
    (["train", "zqx", "--max-steps", "many"], "Invalid value for '--max-steps'"),
    (["generate", "--steps", "2"], "Missing option"),
    (["toy", "report", "--samples", "x"], "Invalid value for '--samples'"),
    (["create-embedding", "w", "--vectors"], "requires an argument"),
])
def test_usage_errors_answer_without_the_heavy_libraries(args, message):
    (result,), heavy = _oneword(args)
    assert heavy == []
    assert result["code"] == 2
    assert message in result["err"] and result["err"].startswith("error: ")
