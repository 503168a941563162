"""Bad command lines, settings files and input files: one line naming the option, key or file, never a bare
exception name, and nothing written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import safetensors.torch
import torch
from cli_helpers import fill_the_disk, run_in_process
from train.train_helpers import write_images

from oneword.models.export import save_single_file
from oneword.models.tiny import build_tiny

GENERIC = re.compile(r"^error: [A-Z][A-Za-z]+(Error|Exception)?:")
"""A line that shows an exception's type instead of saying what is wrong."""
LONG_NAME = "a" * 300


def _train(tmp_path: Path, *extra: str, name: str = "zqx") -> list[str]:
    return ["train", name, "--model", "tiny-sd1", "--data", str(tmp_path / "data"), "--log-dir", str(tmp_path / "log"),
            "--embeddings-dir", str(tmp_path / "emb"), "--max-steps", "2", "--save-every", "0",
            "--preview-every", "0", *extra]


def _lora(tmp_path: Path, *extra: str, command: str = "train-lora") -> list[str]:
    return [command, *_train(tmp_path, "--lora-dir", str(tmp_path / "lora"), *extra)[1:]]


def _generate(tmp_path: Path, *extra: str, prompt: str = "a ball") -> list[str]:
    return ["generate", "-p", prompt, "--model", "tiny-sd1", "--steps", "1", "--embeddings-dir",
            str(tmp_path / "no-embeddings"), "--hypernetwork-dir", str(tmp_path / "hn"), "--out",
            str(tmp_path / "out"), *extra]


def _toml(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "run.toml").write_text(text + "\n", encoding="utf-8")
    return _train(tmp_path, "--config", str(tmp_path / "run.toml"))


def _with_hypernetwork(tmp_path: Path, file_name: str, write) -> list[str]:
    (tmp_path / "hn").mkdir()
    write(tmp_path / "hn" / file_name)
    return _generate(tmp_path, prompt=f"a ball <hypernet:{Path(file_name).stem}:1>")


def _integer_model(tmp_path: Path) -> Path:
    save_single_file(build_tiny("sd1"), tmp_path / "tiny.safetensors")
    tensors = safetensors.torch.load_file(tmp_path / "tiny.safetensors")
    path = tmp_path / "int.safetensors"
    safetensors.torch.save_file({k: v.to(torch.int32) for k, v in tensors.items()}, path)
    return path


def _nan_model(tmp_path: Path) -> Path:
    save_single_file(build_tiny("sd1"), tmp_path / "tiny.safetensors")
    tensors = safetensors.torch.load_file(tmp_path / "tiny.safetensors")
    tensors["first_stage_model.decoder.conv_out.bias"][0] = float("nan")
    path = tmp_path / "nan.safetensors"
    safetensors.torch.save_file(tensors, path)
    return path


CASES = {  # id: (command line from tmp_path, what the one line must say)
    "max-steps-ten": (lambda t: _train(t, "--max-steps", "ten"), "Invalid value for '--max-steps'"),
    "steps-abc": (lambda t: _generate(t, "--steps", "abc"), "Invalid value for '--steps'"),
    "generate-seed-2**64": (lambda t: _generate(t, "--seed", str(2**64)),
                            "--seed must be -1 (random) or between 0 and 18446744073709551615"),
    "train-seed-2**64": (lambda t: _train(t, "--seed", str(2**64)), "--seed must be between 0 and 4294967295"),
    "embeddings-dir-is-a-file": (lambda t: _train(t, "--embeddings-dir", str(t / "file")),
                                 "--embeddings-dir {tmp}/file: is a file, not a folder"),
    "log-dir-is-a-file": (lambda t: _train(t, "--log-dir", str(t / "file")),
                          "--log-dir {tmp}/file: is a file, not a folder"),
    "log-dir-under-a-file": (lambda t: _train(t, "--log-dir", str(t / "file" / "logs")),
                             "--log-dir {tmp}/file/logs: cannot be created, {tmp}/file is a file"),
    "generate-out-is-a-file": (lambda t: _generate(t, "--out", str(t / "file")),
                               "--out {tmp}/file: is a file, not a folder"),
    "generate-embeddings-dir-is-a-file": (lambda t: _generate(t, "--embeddings-dir", str(t / "file")),
                                          "--embeddings-dir {tmp}/file: is a file, not a folder"),
    "train-width-8": (lambda t: _train(t, "--width", "8", "--height", "8"),
                      "--width/--height: pictures of 8x8 px are too small for tiny-sd1"),
    "train-width-16-toy": (lambda t: _train(t, "--width", "16", "--height", "16", "--model", "toy"),
                           "--width/--height: pictures of 16x16 px are too small for toy"),
    "train-300-character-name": (lambda t: _train(t, name=LONG_NAME), "NAME is 300 characters long"),
    "create-embedding-300-character-name": (
        lambda t: ["create-embedding", LONG_NAME, "--model", "tiny-sd1", "--embeddings-dir", str(t / "emb")],
        "NAME is 300 characters long"),
    "create-hypernetwork-300-character-name": (
        lambda t: ["create-hypernetwork", LONG_NAME, "--model", "tiny-sd1", "--hypernetwork-dir", str(t / "hn")],
        "NAME is 300 characters long"),
    "random-bytes-ckpt": (lambda t: _generate(t, "--model", str(t / "random.ckpt")),
                          "{tmp}/random.ckpt: not a readable PyTorch file"),
    "empty-ckpt": (lambda t: _generate(t, "--model", str(t / "empty.ckpt")),
                   "{tmp}/empty.ckpt: empty file, not a checkpoint"),
    "integer-weights": (lambda t: _generate(t, "--model", str(_integer_model(t))),
                        "{tmp}/int.safetensors: the UNet weight time_embedding.linear_1.weight holds int32 numbers"),
    "nan-weight": (lambda t: _generate(t, "--model", str(_nan_model(t))),
                   "{tmp}/nan.safetensors: the weight first_stage_model.decoder.conv_out.bias holds NaN or infinite "
                   "values"),
    "empty-hypernetwork": (lambda t: _with_hypernetwork(t, "style.pt", lambda p: p.write_bytes(b"")),
                           "{tmp}/hn/style.pt: empty file, not a hypernetwork"),
    "hypernetwork-key-without-dots": (
        lambda t: _with_hypernetwork(t, "style.safetensors", lambda p: safetensors.torch.save_file(
            {"nodots": torch.zeros(2)}, p, metadata={"format": "oneword-hypernetwork"})),
        "{tmp}/hn/style.safetensors: unexpected tensor 'nodots'"),
    "toml-max-steps-text": (lambda t: _toml(t, 'max_steps = "abc"'),
                            "--config {tmp}/run.toml: max_steps must be a whole number, not 'abc'"),
    "toml-template-number": (lambda t: _toml(t, "template = 5"), "template must be text, not 5"),
    "toml-width-list": (lambda t: _toml(t, "width = [64]"), "width must be a whole number, not [64]"),
    "toml-batch-size-fraction": (lambda t: _toml(t, "batch_size = 1.5"), "batch_size must be a whole number, not 1.5"),
    "toml-resume-text": (lambda t: _toml(t, 'resume = "no"'), "resume must be true or false, not 'no'"),
    "toml-shuffle-tags-text": (lambda t: _toml(t, 'shuffle_tags = "false"'),
                               "shuffle_tags must be true or false, not 'false'"),
    "toml-unknown-table": (lambda t: _toml(t, "[training]\nmax_steps = 2"), "unknown table [training]"),
    "toml-table-beside-train": (lambda t: _toml(t, "[train]\nmax_steps = 2\n[preview]\nsteps = 4"),
                                "unknown table [preview]"),
    "toml-key-outside-train": (lambda t: _toml(t, "seed = 3\n[train]\nmax_steps = 2"),
                               "setting 'seed' outside the [train] table"),
    "toml-unknown-key": (lambda t: _toml(t, "colour = 1"), "unknown setting 'colour'"),
    "train-lora-kind-embedding": (lambda t: _lora(t, "--kind", "embedding"),
                                  "--kind embedding: `oneword train-lora` trains a lora; train an embedding with "
                                  "`oneword train NAME --kind embedding`"),
    "lora-alpha-inf": (lambda t: _lora(t, "--alpha", "inf"), "--alpha must be a finite number above 0, but is inf"),
    "lora-conv-alpha-inf": (lambda t: _lora(t, "--targets", "conv", "--conv-alpha", "inf"),
                            "--conv-alpha must be a finite number above 0, but is inf"),
    "lora-rank-a-billion": (lambda t: _lora(t, "--rank", "1000000000"),
                            "--rank 1000000000: above the width of the narrowest layer it trains (32, "
                            "lora_unet_down_blocks_0_attentions_0_proj_in): give at most 32"),
    "lora-vectors": (lambda t: _lora(t, "--vectors", "4"),
                     "--vectors 4: a lora adds no word's vectors (--vectors and --init-text are for --kind embedding "
                     "or pivotal)"),
    "lora-init-text": (lambda t: _lora(t, "--init-text", "ball"),
                       "--init-text 'ball': a lora adds no word's vectors (--vectors and --init-text are for --kind "
                       "embedding or pivotal)"),
    "lora-text-encoder-lr-without-the-text-encoder": (
        lambda t: _lora(t, "--no-train-text-encoder", "--text-encoder-lr", "0.001"),
        "--text-encoder-lr 0.001: the text encoder is not trained (--no-train-text-encoder)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_line_naming_what_is_wrong(tmp_path, monkeypatch, capsys, case):
    write_images(tmp_path / "data")
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    (tmp_path / "random.ckpt").write_bytes(os.urandom(4096))
    (tmp_path / "empty.ckpt").write_bytes(b"")
    command, message = CASES[case]
    code, out, err = run_in_process(monkeypatch, capsys, *command(tmp_path))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message.format(tmp=tmp_path) in lines[0]
    assert not GENERIC.match(lines[0]) and "Traceback" not in out + err
    assert not (tmp_path / "log").exists() and not (tmp_path / "out").exists()


def test_a_read_only_embeddings_folder_is_refused_before_training(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    folder = tmp_path / "emb"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: deny it the way a read-only folder denies a user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: real_access(p, mode, **kw)
                            and not (Path(p) == folder and mode & os.W_OK))
    code, out, err = run_in_process(monkeypatch, capsys, *_train(tmp_path, "--max-steps", "20"))
    folder.chmod(0o755)
    assert code == 1, err
    assert err.strip() == f"error: --embeddings-dir {folder}: not writable"
    assert not (tmp_path / "log").exists()


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "data")
    fill_the_disk(monkeypatch, ".tmp")
    code, out, err = run_in_process(monkeypatch, capsys, *_train(tmp_path))
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 1
    assert len(lines) == 1 and re.fullmatch(rf"error: {re.escape(str(tmp_path))}/\S+: No space left on device", lines[0])
    assert "Traceback" not in out + err
