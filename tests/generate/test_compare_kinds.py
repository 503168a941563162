"""`oneword compare` for every kind's checkpoints: the same prompt and seed without the add-on and with each file,
each column exactly what `oneword generate` draws with that file called up by its prompt tag; files of mixed
kinds, or that are no checkpoint, refused before the model loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_in_process
from lora.lora_helpers import random_lora
from PIL import Image

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.hypernetworks.formats import save_hypernetwork
from oneword.hypernetworks.hypernetwork import HypernetworkSettings, new_hypernetwork
from oneword.lora.write import save_lora
from oneword.models.tiny import build_tiny

SEED, STEPS = "3", "2"


def _lora_checkpoints(folder, bundled: bool) -> list[str]:
    """lora/zq-100 and lora/zq-200, LoRAs of tiny-sd1 (with the word `zq` bundled when `bundled`)."""
    model = build_tiny("sd1", seed=0)
    names = []
    for step in (100, 200):
        lora = random_lora(model, name="zq", seed=step)
        lora.step = step
        if bundled:
            vectors = torch.randn(2, 64, generator=torch.Generator().manual_seed(step))
            lora.embeddings = {"zq": Embedding("zq", {"*": vectors})}
        save_lora(lora, folder / f"zq-{step}.safetensors", {"ss_steps": str(step)})
        names.append(f"zq-{step}")
    return names


def _hypernetwork_checkpoints(folder) -> list[str]:
    names = []
    for step in (100, 200):
        hn = new_hypernetwork("zq", [32, 64], HypernetworkSettings(activation_func="relu"), seed=step)
        with torch.no_grad():
            for p in hn.parameters():  # far from zero: a fresh one barely changes anything
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(step + p.numel())) * 0.2)
        hn.step = step
        save_hypernetwork(hn, folder / f"zq-{step}.pt")
        names.append(f"zq-{step}")
    return names


def _drawn(monkeypatch, capsys, prompt: str, out: str, *options: str) -> np.ndarray:
    code, _, err = run_in_process(monkeypatch, capsys, "generate", "--prompt", prompt, "--model", "tiny-sd1",
                                  "--seed", SEED, "--steps", STEPS, "--out", out, *options)
    assert code == 0, err
    return np.asarray(Image.open(next((Path.cwd() / out).iterdir())).convert("RGB"))


@pytest.mark.parametrize("kind", ["lora", "pivotal", "hypernetwork"])
def test_compare_draws_each_checkpoint_as_its_prompt_tag_does(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "run" / kind
    folder.mkdir(parents=True)
    if kind == "hypernetwork":
        names, tag, option = _hypernetwork_checkpoints(folder), "hypernet", "--hypernetwork-dir"
    else:
        names, tag, option = _lora_checkpoints(folder, bundled=kind == "pivotal"), "lora", "--lora-dir"
    files = [str(folder / f"{name}{'.pt' if kind == 'hypernetwork' else '.safetensors'}") for name in names]
    prompt = "a photo of zq"
    code, out, err = run_in_process(monkeypatch, capsys, "compare", *files, "--prompt", prompt, "--model", "tiny-sd1",
                                    "--seed", SEED, "--steps", STEPS, "--out", "grid.png")
    assert code == 0, err
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB"))
    label = grid.shape[0] - 64  # the column labels above the pictures
    assert grid.shape[1:] == (3 * 64, 3) and label > 0
    cells = [grid[label:, c * 64:(c + 1) * 64] for c in range(3)]
    assert np.array_equal(cells[0], _drawn(monkeypatch, capsys, prompt, "plain"))
    for i, name in enumerate(names):
        with_tag = _drawn(monkeypatch, capsys, f"{prompt} <{tag}:{name}:1>", f"tagged-{i}", option, str(folder))
        assert np.array_equal(cells[1 + i], with_tag), name
    assert not np.array_equal(cells[0], cells[1]) and not np.array_equal(cells[1], cells[2])


def _refused(monkeypatch, capsys, *args: str) -> str:
    """The one error line of `compare ARGS`, which must not have loaded the model."""
    import oneword

    def no_model(*_, **__):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(oneword, "load_base", no_model)
    code, out, err = run_in_process(monkeypatch, capsys, "compare", *args, "--prompt", "a photo of zq", "--model",
                                    "tiny-sd1", "--out", "grid.png")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, err
    return lines[0]


def test_compare_refuses_mixed_kinds_and_files_that_are_no_checkpoint_before_the_model_loads(tmp_path, monkeypatch,
                                                                                              capsys):
    from safetensors.torch import save_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "l").mkdir()
    lora = tmp_path / "l" / f"{_lora_checkpoints(tmp_path / 'l', bundled=False)[0]}.safetensors"
    save_embedding(Embedding("zq-5", {"*": torch.ones(1, 64)}, step=5), tmp_path / "zq-5.pt")
    base = tmp_path / "model.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, str(base))
    notes = tmp_path / "notes.safetensors"
    notes.write_text("not tensors at all\n")

    line = _refused(monkeypatch, capsys, "zq-5.pt", str(lora), "--word", "zq")
    assert line == (f"error: compare takes checkpoints of one kind; these are of two: zq-5.pt is an embedding, "
                    f"{lora} a LoRA")
    line = _refused(monkeypatch, capsys, str(lora), str(base))
    assert line == f"error: {base}: a base model, not a checkpoint to compare (an embedding, hypernetwork or LoRA)"
    line = _refused(monkeypatch, capsys, str(notes))
    assert line.startswith(f"error: {notes}: not a checkpoint to compare: not a readable safetensors file")
    line = _refused(monkeypatch, capsys, "zq-5.pt")
    assert line == "error: --word: embeddings need the word of the prompt that each file stands for"
    line = _refused(monkeypatch, capsys, str(lora), "--word", "zq")
    assert line == ("error: --word: a LoRA changes the model, not a word of the prompt; leave --word out (a word "
                    "the prompt holds stays as it is)")


def test_compare_binds_a_bundled_word_to_word_when_given(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lora").mkdir()
    files = [str(tmp_path / "lora" / f"{name}.safetensors") for name in _lora_checkpoints(tmp_path / "lora", True)]
    grids = []
    for prompt, word in (("a photo of zq", ()), ("a photo of qx", ("--word", "qx"))):
        code, _, err = run_in_process(monkeypatch, capsys, "compare", *files, *word, "--prompt", prompt, "--model",
                                      "tiny-sd1", "--seed", SEED, "--steps", STEPS, "--out", f"{len(grids)}.png")
        assert code == 0, err
        grids.append(np.asarray(Image.open(tmp_path / f"{len(grids)}.png").convert("RGB")))
    pictures = [grid[grid.shape[0] - 64:] for grid in grids]
    # the LoRA columns draw the same (the word's vectors, under either name); the plain prompts differ
    assert np.array_equal(pictures[0][:, 64:], pictures[1][:, 64:])
    assert not np.array_equal(pictures[0][:, :64], pictures[1][:, :64])
