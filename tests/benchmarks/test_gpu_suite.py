"""benchmarks/gpu_suite.py run as a user runs it, on the CPU: the smoke path writes every part with finite figures,
and a part that fails or runs past its budget is recorded as such while the next part still runs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "benchmarks" / "gpu_suite.py"
PARTS = ["sd15-ti-b1", "sd15-ti-b8", "sd15-lora-b1", "precision-ti", "precision-lora", "sdxl-ti-b1"]


def run_suite(out: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SUITE), "--out", str(out), "--threads", "1", *options],
                          check=False, env=env, capture_output=True, text=True, timeout=300)


def finite(value) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def test_smoke_writes_every_part_with_finite_figures(tmp_path):
    done = run_suite(tmp_path, "--smoke")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert report["smoke"] is True and report["device"] == "cpu"
    assert [p["name"] for p in report["parts"]] == PARTS
    assert all(p["status"] == "ok" for p in report["parts"])
    for part in report["parts"]:
        if part["name"].startswith("precision"):
            assert part["finite"] is True and part["passed"] is True
            assert len(part["losses_bf16"]) == len(part["losses_fp32"]) == part["steps"] == 5
            assert all(finite(x) for x in [*part["losses_bf16"], *part["losses_fp32"]])
            assert 0 < part["update_difference"] <= part["update_tolerance"]
            assert part["loss_difference"] <= part["loss_tolerance"]
            continue
        assert part["arch"] == ("tiny-sdxl" if part["name"].startswith("sdxl") else "tiny-sd1")
        assert finite(part["speedup"]) and part["speedup"] > 0 and finite(part["unet_gflop_per_step"])
        assert set(part["variants"]) == {"reference", "oneword"}
        for figures in part["variants"].values():
            assert figures["steps_per_second"] > 0 and finite(figures["steps_per_second"])
            assert finite(figures["peak_mib"]) and finite(figures["unet_tflops"]) and figures["unet_tflops"] > 0
            assert figures["peak_share"] is None  # a CPU has no bf16 peak in the table
        assert [t["met"] for t in part["targets"]] == [None] * len(part["targets"])  # not judged on a CPU
    table = (tmp_path / "gpu_suite.md").read_text()
    assert table.startswith("# GPU suite: CPU smoke check")
    assert table.count("| tiny-sd1, 64 px | reference |") == 3 and table.count("| tiny-sdxl, 64 px | oneword |") == 1
    assert table.count(": passed; finite True;") == 2
    assert "did not finish" not in table


def test_a_part_past_its_budget_is_recorded_and_the_next_runs(tmp_path):
    done = run_suite(tmp_path, "--smoke", "--only", "sdxl-ti-b1", "--only", "precision-ti", "--part-budget", "0.5")
    assert done.returncode == 1
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert [(p["name"], p["status"]) for p in report["parts"]] == [("precision-ti", "timeout"),
                                                                   ("sdxl-ti-b1", "timeout")]
    assert report["parts"][0]["error"] == "ran past its budget of 0.5 s"
    table = (tmp_path / "gpu_suite.md").read_text()
    assert "- precision-ti: timeout: ran past its budget" in table and "- sdxl-ti-b1: timeout:" in table
    assert not list(tmp_path.glob(".*"))  # no part's working file left behind


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_parts_that_fail_are_recorded_with_their_error(tmp_path):
    done = run_suite(tmp_path, "--device", "cuda", "--only", "sd15-ti-b1", "--only", "precision-lora")
    assert done.returncode == 1
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert [(p["name"], p["status"]) for p in report["parts"]] == [("sd15-ti-b1", "error"),
                                                                   ("precision-lora", "error")]
    for part in report["parts"]:
        assert part["error"] == "RuntimeError: --device cuda: PyTorch sees no CUDA device on this machine"
        assert [t["met"] for t in part["targets"]] == [None] * len(part["targets"])
    assert "Traceback" in report["parts"][0]["traceback"]
