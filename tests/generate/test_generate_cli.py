"""`oneword generate` and `oneword compare` through the real entry point."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cli_helpers import error_lines, run_oneword
from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.generate.pnginfo import read_parameters


def test_generate_writes_pngs_with_parameters(tmp_path):
    out = tmp_path / "out"
    result = run_oneword("generate", "--prompt", "a cat", "--seed", "4", "--steps", "2", "--batch", "2",
                         "--out", str(out), "--embeddings-dir", str(tmp_path / "none"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["00000-4.png", "00001-5.png"]
    assert result.stdout.split() == [str(out / "00000-4.png"), str(out / "00001-5.png")]
    text = read_parameters(out / "00001-5.png")
    assert text.startswith("a cat\nSteps: 2, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, Model hash: ")


def test_unknown_sampler_is_one_line_and_nonzero(tmp_path):
    result = run_oneword("generate", "--prompt", "a cat", "--sampler", "plms2", "--out", str(tmp_path / "o"))
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: --sampler: unknown sampler 'plms2'; known: euler_a, euler, ddim, dpmpp_2m, dpmpp_2m_karras"
    ]
    assert not (tmp_path / "o").exists()


def test_missing_model_is_one_line_and_nonzero(tmp_path):
    result = run_oneword("generate", "--prompt", "a cat", "--model", str(tmp_path / "nope.safetensors"))
    assert result.returncode == 1
    assert error_lines(result) == [f"error: --model {tmp_path / 'nope.safetensors'}: no such file or folder"]


def test_compare_draws_one_column_per_file(tmp_path, tiny_sd1):
    files = []
    for step, scale in ((500, 0.5), (1000, 2.0)):
        emb = Embedding(name=f"mychar-{step}", vectors={"*": torch_randn(2, 64, seed=step) * scale}, step=step)
        path = tmp_path / f"mychar-{step}.pt"
        save_embedding(emb, path)
        files.append(str(path))
    out = tmp_path / "grid.png"
    result = run_oneword("compare", *files, "--word", "mychar", "--prompt", "a photo of mychar", "--seed", "3",
                         "--steps", "2", "--batch", "2", "--out", str(out), "--embeddings-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(out).convert("RGB"))
    label = 4 + 2 * 14  # two lines of labels: "no embedding" wraps in a 64-px column
    assert grid.shape == (label + 2 * 64, 3 * 64, 3)
    cells = [grid[label:label + 64, c * 64:(c + 1) * 64] for c in range(3)]
    assert not np.array_equal(cells[0], cells[1]) and not np.array_equal(cells[1], cells[2])
    assert "Compared: mychar-500.pt; mychar-1000.pt" in read_parameters(out)


def torch_randn(*shape: int, seed: int):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_bad_model_files_are_one_line_each_through_the_command(tmp_path):
    import torch
    from safetensors.torch import save_file

    text = tmp_path / "notes.safetensors"
    text.write_text("these are my notes, not a model\n")
    other = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2, 2)}, str(other))
    truncated = tmp_path / "cut.safetensors"
    save_file({"model.diffusion_model.x": torch.zeros(64, 64)}, str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:-100])
    for path, expected in [
        (text, f"error: {text}: "),
        (other, f"error: {other}: not a Stable Diffusion checkpoint"),
        (truncated, f"error: {truncated}: "),
    ]:
        result = run_oneword("generate", "--prompt", "a cat", "--model", str(path), "--out", str(tmp_path / "o"))
        lines = error_lines(result)
        assert result.returncode == 1, path
        assert len(lines) == 1 and lines[0].startswith(expected), lines
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
