"""Commands that only read files import only what reading needs: `oneword inspect` of a LoRA or an embedding in a
safetensors file reads its header and numbers with numpy, without torch, and prints what the full readers print;
`oneword toy concepts` loads no model library. Each run is in a fresh interpreter, so that what this test process
imported does not count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from oneword.inspect.describe import inspect_file
from oneword.inspect.report import report_lines

HEAVY = ("torch", "diffusers", "transformers", "gradio", "matplotlib")

_RUN = r"""
import contextlib, io, json, sys

from oneword.cli import main

out = io.StringIO()
sys.argv = ["oneword", *{args!r}]
code = 0
with contextlib.redirect_stdout(out):
    try:
        main()
    except SystemExit as e:
        code = e.code
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "out": out.getvalue(), "heavy": heavy}}))
"""


def _oneword(*args: str) -> dict:
    """Run `oneword ARGS` through `main()` in a new interpreter: its exit code, output and the heavy modules loaded."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-c", _RUN.format(args=list(args), heavy=HEAVY)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _layer(tensors: dict, key: str, down: torch.Tensor, up: torch.Tensor, alpha: torch.Tensor | None = None) -> None:
    tensors[f"{key}.lora_down.weight"], tensors[f"{key}.lora_up.weight"] = down, up
    if alpha is not None:
        tensors[f"{key}.alpha"] = alpha


def _files(folder: Path) -> list[Path]:
    """A LoRA (float16, alpha and trigger), a LoCon (bfloat16, float64 alpha), an SDXL embedding and a diffusers
    single-tensor embedding."""
    generator = torch.Generator().manual_seed(0)

    def numbers(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.01

    lora: dict[str, torch.Tensor] = {}
    _layer(lora, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", numbers(4, 768).half(),
           numbers(320, 4).half(), torch.tensor(2.0).half())
    _layer(lora, "lora_te_text_model_encoder_layers_0_mlp_fc1", numbers(4, 768).half(), numbers(3072, 4).half())
    save_file(lora, folder / "face.safetensors", metadata={"ss_steps": "300", "ss_network_module": "networks.lora",
                                                            "modelspec.trigger_phrase": "ohwx"})
    locon: dict[str, torch.Tensor] = {}
    _layer(locon, "lora_unet_down_blocks_1_resnets_0_conv1", numbers(8, 320, 3, 3).bfloat16(),
           numbers(640, 8, 1, 1).bfloat16(), torch.tensor([4.0], dtype=torch.float64))
    _layer(locon, "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k", numbers(8, 1024).bfloat16(),
           numbers(1280, 8).bfloat16(), torch.tensor(8.0, dtype=torch.float64))
    save_file(locon, folder / "style.safetensors")
    save_file({"clip_l": numbers(3, 768), "clip_g": numbers(3, 1280)}, folder / "xl.safetensors",
              metadata={"step": "120", "sd_checkpoint_name": "base", "sd_checkpoint": "abc123"})
    save_file({"<cat-toy>": numbers(768)}, folder / "cat.safetensors")
    return [folder / name for name in ("face.safetensors", "style.safetensors", "xl.safetensors", "cat.safetensors")]


def test_inspect_of_safetensors_loras_and_embeddings_needs_no_torch(tmp_path):
    files = _files(tmp_path)
    result = _oneword("inspect", *map(str, files))
    assert result["code"] == 0
    assert result["heavy"] == []
    assert result["out"] == "".join("\n".join(report_lines(inspect_file(path))) + "\n" for path in files)
    assert "what: LoRA\n" in result["out"] and "what: LoCon\n" in result["out"] and "what: embedding" in result["out"]


@pytest.mark.parametrize("case", ["nan", "half a layer", "alpha of two numbers", "bundle", "loha", "big embedding"])
def test_a_file_the_header_cannot_settle_reads_as_before(tmp_path, case):
    """Files the readers refuse, keep in part or read as more than a plain LoRA are described as the full reading
    describes them, whether or not the command asked for the contents."""
    lora: dict[str, torch.Tensor] = {}
    _layer(lora, "lora_unet_a_attn2_to_k", torch.ones(4, 768) * 0.01, torch.ones(320, 4) * 0.01)
    if case == "nan":
        lora["lora_unet_a_attn2_to_k.lora_up.weight"][0, 0] = float("nan")
    elif case == "half a layer":
        lora["lora_unet_b_attn2_to_v.lora_down.weight"] = torch.ones(4, 768)
    elif case == "alpha of two numbers":
        lora["lora_unet_a_attn2_to_k.alpha"] = torch.ones(2)
    elif case == "bundle":
        lora["bundle_emb.<w>.string_to_param.*"] = torch.ones(2, 768) * 0.01
    elif case == "loha":
        lora["lora_unet_c_attn1_to_q.hada_w1_a"] = torch.ones(320, 4)
    else:
        lora = {"emb_params": torch.ones(80, 768) * 0.01}
    path = tmp_path / "file.safetensors"
    save_file(lora, path)
    assert report_lines(inspect_file(path, content=False)) == report_lines(inspect_file(path))


def test_toy_concepts_loads_no_model_library():
    result = _oneword("toy", "concepts")
    assert result["code"] == 0
    assert result["heavy"] == []
    assert "init text:" in result["out"]


def test_inspect_of_a_pickle_or_a_lycoris_file_needs_torch_and_no_model_library(tmp_path):
    """A `.pt` file is read through torch's restricted loader, a LoHa through the full LoRA reader: torch loads,
    diffusers and transformers (a model's libraries) do not."""
    pt, loha = tmp_path / "old.pt", tmp_path / "loha.safetensors"
    torch.save({"string_to_param": {"*": torch.full((2, 768), 0.01)}, "name": "old", "step": 5}, pt)
    parts = {"hada_w1_a": (320, 4), "hada_w1_b": (4, 320), "hada_w2_a": (320, 4), "hada_w2_b": (4, 320)}
    save_file({f"lora_unet_a_attn1_to_q.{part}": torch.full(shape, 0.01) for part, shape in parts.items()}, loha)
    result = _oneword("inspect", str(pt), str(loha))
    assert result["code"] == 0
    assert result["heavy"] == ["torch"]
    assert result["out"] == "".join("\n".join(report_lines(inspect_file(path))) + "\n" for path in (pt, loha))
    assert "what: LoHa" in result["out"]
