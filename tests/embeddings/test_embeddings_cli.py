"""`oneword create-embedding` and `oneword embeddings list` through the real entry point."""

from __future__ import annotations

import torch
import typer
from cli_helpers import error_lines, run_oneword
from cli_helpers import run_in_process as _run

from oneword.cli import app
from oneword.embeddings.create import create_embedding
from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import load_embedding_file, save_embedding


def test_create_embedding_writes_the_file(tmp_path, monkeypatch, capsys, tiny_sd1):
    folder = tmp_path / "emb"
    code, out, err = _run(monkeypatch, capsys, "create-embedding", "my_toy", "--init-text", "1girl, solo", "--model",
                          "tiny-sd1",
                          "--vectors", "4", "--embeddings-dir", str(folder))
    assert (code, err) == (0, "")
    path = folder / "my_toy.pt"
    assert out == f"wrote {path} (4 vectors of width 64, init text '1girl, solo')\n"
    written = load_embedding_file(path)
    assert (written.name, written.step, written.n_vectors) == ("my_toy", 0, 4)
    expected = create_embedding(tiny_sd1, "my_toy", init_text="1girl, solo", n_vectors=4)  # same seed-0 model
    assert torch.equal(written.vectors["*"], expected.vectors["*"])
    assert sorted(p.name for p in folder.iterdir()) == ["my_toy.pt"]


def test_existing_file_is_refused_in_one_line_unless_overwrite(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "emb"
    args = ("create-embedding", "toy", "--embeddings-dir", str(folder), "--init-text", "")
    assert _run(monkeypatch, capsys, *args)[0] == 0
    before = (folder / "toy.pt").read_bytes()

    code, out, err = _run(monkeypatch, capsys, *args, "--vectors", "3")
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"error: {folder / 'toy.pt'} already exists (use --overwrite to replace it)"]
    assert (folder / "toy.pt").read_bytes() == before

    code, out, err = _run(monkeypatch, capsys, *args, "--vectors", "3", "--overwrite", "--format", "pt")
    assert code == 0
    assert load_embedding_file(folder / "toy.pt").n_vectors == 3


def test_bad_options_are_all_named_in_one_line(tmp_path, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, "create-embedding", "***", "--vectors", "76", "--format", "ckpt",
                          "--embeddings-dir", str(tmp_path))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "error: NAME '***': has '*' (a name holds only letters, digits, _, - and .: it is a file's name); "
        "--vectors: 76 is out of range; an embedding has 1 to 75 vectors; "
        "--format: 'ckpt' is not one of pt, safetensors"
    ]
    assert list(tmp_path.iterdir()) == []


def test_known_word_prints_a_warning(tmp_path, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, "create-embedding", "cat", "--format", "safetensors",
                          "--embeddings-dir", str(tmp_path))
    assert code == 0 and (tmp_path / "cat.safetensors").is_file()
    assert err.startswith("warning: 'cat' is already a word the model knows (token ")


def test_embeddings_list_shows_each_file_with_its_status(tmp_path, monkeypatch, capsys):
    g = torch.Generator().manual_seed(0)
    save_embedding(Embedding("good", {"*": torch.randn(2, 64, generator=g)}, step=300), tmp_path / "good.pt")
    save_embedding(Embedding("wide", {"*": torch.randn(1, 768, generator=g)}), tmp_path / "sub" / "wide.safetensors")
    (tmp_path / "junk.pt").write_text("junk")
    code, out, err = _run(monkeypatch, capsys, "embeddings", "list", "--embeddings-dir", str(tmp_path))
    assert (code, err) == (0, "")
    rows = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in out.splitlines() if "│" in line]
    assert rows == [
        ["good.pt", "good", "2", "64", "300", "loaded"],
        ["junk.pt", "", "", "", "", "skipped: not a PyTorch file (neither a zip archive nor a pickle)"],
        ["sub/wide.safetensors", "wide", "1", "768", "",
         "skipped: width 768 does not match the model's text encoder (64)"],
    ]
    assert out.splitlines()[-1] == "1 loaded, 2 skipped"


def test_embeddings_list_of_a_missing_folder(tmp_path, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, "embeddings", "list", "--embeddings-dir", str(tmp_path / "none"))
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"error: --embeddings-dir {tmp_path / 'none'}: no such folder"]


def test_every_option_has_help_and_a_shown_default():
    from oneword.cli import _register

    _register()
    root = typer.main.get_command(app)
    commands = {"create-embedding": root.commands["create-embedding"],
                "list": root.commands["embeddings"].commands["list"]}
    for name, command in commands.items():
        assert command.help, name
        for param in command.params:
            if param.name == "name":
                continue
            assert param.help, (name, param.name)
            assert param.show_default is not False, (name, param.name)
            assert param.required or param.default is not None, (name, param.name)


def test_subprocess_create_then_refuse(tmp_path):
    folder = tmp_path / "emb"
    result = run_oneword("create-embedding", "sub_toy", "--vectors", "2", "--embeddings-dir", str(folder))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {folder / 'sub_toy.pt'} (2 vectors of width 64, init text '*')"
    result = run_oneword("create-embedding", "sub_toy", "--embeddings-dir", str(folder))
    assert result.returncode == 1
    assert error_lines(result) == [f"error: {folder / 'sub_toy.pt'} already exists (use --overwrite to replace it)"]

