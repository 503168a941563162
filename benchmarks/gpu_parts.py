"""The parts of the GPU suite (`gpu_suite.py`), each run in a child process of its own: a speed part trains one
model with the reference loop and with oneword's trainer, beside each other (`train_speed.py`'s functions); the
precision part trains the same steps in bf16 and in float32 and compares them.

A part fills a record (a dict) and has it saved after every figure, so that a part stopped at its time budget
still leaves what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import train_speed  # beside this file

GB = 1e9 / 2**20
"""MiB in a GB (10^9 bytes, the stricter reading of the targets' GB)."""
LOSS_TOLERANCE = 0.02
"""Precision check: the largest per-step loss difference, bf16 against float32, relative to the float32 loss."""
UPDATE_TOLERANCE = 0.25
"""Precision check: the bf16 run's update (trained minus initial tensors) against the float32 run's, as the L2 norm
of the difference over the float32 update's norm."""


@dataclass(frozen=True)
class Part:
    """One measurement of the suite."""

    name: str
    title: str
    arch: str
    """train_speed.py's `--arch` on a GPU: sd15 or sdxl."""
    smoke_arch: str
    """The tiny model of the same kind, for `--smoke` on the CPU."""
    kind: str
    """What is trained: embedding or lora."""
    batch: int
    budget_s: float
    """Seconds the part may take on a GPU, its process's start and model build included (a cap: the run's budget
    caps it too, so the last part gets at most what the others left)."""
    warmup: int = 5
    steps: int = 25
    check: str = "speed"
    """speed: reference against oneword; precision: bf16 against float32."""
    max_peak_gb: float | None = None
    """Target: oneword's peak GPU memory at most this many GB."""
    min_speedup: float | None = None
    """Target: oneword's steps per second at least this many times the reference's."""
    min_peak_share: float | None = None
    """Target: oneword's UNet work at least this share of the card's bf16 peak."""


PARTS = (
    Part("sd15-ti-b1", "TI, SD 1.5, 512 px, batch 1", "sd15", "tiny-sd1", "embedding", 1, 60,
         max_peak_gb=3.5, min_speedup=2.5),
    Part("sd15-ti-b8", "TI, SD 1.5, 512 px, batch 8", "sd15", "tiny-sd1", "embedding", 8, 90, warmup=3, steps=12,
         min_speedup=2.5, min_peak_share=0.35),
    Part("sd15-lora-b1", "LoRA rank 16, SD 1.5, 512 px, batch 1", "sd15", "tiny-sd1", "lora", 1, 60, max_peak_gb=5),
    Part("precision-ti", "TI, SD 1.5, 512 px: bf16 against float32", "sd15", "tiny-sd1", "embedding", 1, 45,
         steps=20, check="precision"),
    Part("precision-lora", "LoRA rank 16, SD 1.5, 512 px: bf16 against float32", "sd15", "tiny-sd1", "lora", 1, 45,
         steps=20, check="precision"),
    Part("sdxl-ti-b1", "TI, SDXL, 1024 px, batch 1", "sdxl", "tiny-sdxl", "embedding", 1, 180, warmup=3, steps=10,
         max_peak_gb=12),
)
"""In the order they run: the cheap SD 1.5 parts first, SDXL (the longest build and steps) last."""


def run_part(part: Part, record: dict, save: Callable[[], None], smoke: bool, device: torch.device) -> None:
    """Measure `part` into `record`, saving it after each figure; `smoke`: the tiny model, a couple of steps."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: PyTorch sees no CUDA device on this machine")
    name, peak = train_speed.device_peak(device)
    arch = part.smoke_arch if smoke else part.arch
    record.update(device=name, device_type=device.type, bf16_peak_tflops=peak, arch=arch)
    model = train_speed.make_model(arch)
    record["size"] = int(model.vae.config.sample_size)
    save()
    with tempfile.TemporaryDirectory() as tmp:
        data = train_speed.write_pictures(Path(tmp) / "data", max(8, part.batch), record["size"])
        if part.check == "precision":
            precision_check(part, model, data, Path(tmp), device, record, smoke)
        else:
            speed_check(part, model, data, Path(tmp), device, record, save, smoke)


def speed_check(part: Part, model, data: Path, tmp: Path, device: torch.device, record: dict,
                save: Callable[[], None], smoke: bool) -> None:
    """The reference loop, then oneword's trainer with its defaults; then the UNet's FLOPs give each one's TFLOP/s."""
    args = argparse.Namespace(arch=record["arch"], kind=part.kind, batch=part.batch,
                              warmup=1 if smoke else part.warmup, steps=2 if smoke else part.steps)
    record.update(warmup=args.warmup, steps=args.steps, variants={})
    for label, changes in (("reference", None), ("oneword", {})):
        result = train_speed.run_variant(model, data, args, device, tmp / label, changes)
        record["variants"][label] = {k: float(v) for k, v in result.items()}
        save()
    flops = train_speed.measure_flops(model, part.batch, device)
    record["unet_gflop_per_step"] = flops / 1e9
    for figures in record["variants"].values():
        figures["unet_tflops"] = flops * figures["steps_per_second"] / 1e12
        peak = record["bf16_peak_tflops"]
        figures["peak_share"] = figures["unet_tflops"] / peak if peak else None
    variants = record["variants"]
    record["speedup"] = variants["oneword"]["steps_per_second"] / variants["reference"]["steps_per_second"]


@contextlib.contextmanager
def frozen_weights_in(dtype: torch.dtype) -> Iterator[None]:
    """oneword's setup casting the frozen model to `dtype` whatever the device (the CPU's smoke check has no bf16
    training of its own: there oneword trains in float32)."""
    from oneword.train import loop

    original = loop.training_dtype
    loop.training_dtype = lambda device, half_precision=True: dtype if half_precision else torch.float32
    try:
        yield
    finally:
        loop.training_dtype = original


def train_steps(part: Part, model, data: Path, log: Path, device: torch.device, steps: int,
                half: bool) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float]]:
    """`steps` steps of oneword's trainer (seed 0) with the frozen weights in bf16 (`half`) or float32: the trained
    tensors before and after, and each step's loss (from the run's loss CSV, one row a step)."""
    from oneword.train.config import TrainConfig
    from oneword.train.loop import fit, setup

    word = {} if part.kind == "lora" else {"init_text": "ball"}  # a LoRA adds no word: --init-text is refused
    config = TrainConfig(name="precision", data=data, model=model.name, batch_size=part.batch,
                         max_steps=steps, save_every=0, preview_every=0, validate_every=0, csv_every=1,
                         log_dir=log, embeddings_dir=log / "emb", lora_dir=log / "lora", seed=0,
                         half_precision=half, kind=part.kind, **word)
    train_speed.plain_unet(model)
    with frozen_weights_in(torch.bfloat16) if device.type == "cpu" and half else contextlib.nullcontext():
        run = setup(config, model, device=device.type)
        before = [p.detach().float().cpu().clone() for p in run.trainable.parameters()]
        fit(run)
    after = [p.detach().float().cpu().clone() for p in run.trainable.parameters()]
    with open(run.folder.csv, newline="") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    return before, after, losses


def precision_check(part: Part, model, data: Path, tmp: Path, device: torch.device, record: dict,
                    smoke: bool) -> None:
    """The same steps (same seed, same pictures, same noise) in float32 and then in bf16, compared. This part's
    process computes float32 as float32: no TF32 in cuDNN's convolutions (PyTorch's default) or in matrix products."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    steps = 5 if smoke else part.steps
    fp32 = train_steps(part, model, data, tmp / "fp32", device, steps, half=False)
    bf16 = train_steps(part, model, data, tmp / "bf16", device, steps, half=True)
    record.update(steps=steps, **compare_runs(fp32, bf16))


def compare_runs(fp32: tuple, bf16: tuple) -> dict:
    """The precision check's figures and verdict: finite, the loss and update differences against the tolerances."""
    (before32, after32, loss32), (before16, after16, loss16) = fp32, bf16
    finite = all(math.isfinite(x) for x in loss16) and all(bool(t.isfinite().all()) for t in after16)
    scale = sum(abs(x) for x in loss32) / max(len(loss32), 1)
    loss_diff = max((abs(a - b) for a, b in zip(loss16, loss32, strict=True)), default=0.0) / max(scale, 1e-12)
    update32 = torch.cat([(a - b).flatten() for a, b in zip(after32, before32, strict=True)])
    update16 = torch.cat([(a - b).flatten() for a, b in zip(after16, before16, strict=True)])
    update_diff = float((update16 - update32).norm() / update32.norm().clamp_min(1e-30))
    cosine = float(torch.nn.functional.cosine_similarity(update16, update32, dim=0))
    return {
        "finite": finite, "losses_fp32": loss32, "losses_bf16": loss16, "loss_difference": loss_diff,
        "update_difference": update_diff, "update_cosine": cosine, "trained_numbers": int(update32.numel()),
        "loss_tolerance": LOSS_TOLERANCE, "update_tolerance": UPDATE_TOLERANCE,
        "passed": bool(finite and loss_diff <= LOSS_TOLERANCE and update_diff <= UPDATE_TOLERANCE),
    }


def targets(part: Part, record: dict) -> list[dict]:
    """The part's targets with the measured value and whether it is met (None: not measured, or not on a GPU)."""
    oneword = record.get("variants", {}).get("oneword", {})
    on_gpu = record.get("device_type") == "cuda"
    rows = []
    for what, goal, value, ok in (
        ("peak memory (GB)", part.max_peak_gb, oneword.get("peak_mib"), lambda v, g: v <= g * GB),
        ("speedup vs reference", part.min_speedup, record.get("speedup"), lambda v, g: v >= g),
        ("share of bf16 peak", part.min_peak_share, oneword.get("peak_share"), lambda v, g: v >= g),
    ):
        if goal is not None:
            met = ok(value, goal) if value is not None and on_gpu else None
            rows.append({"what": what, "target": goal, "value": value, "met": met})
    if part.check == "precision":
        rows.append({"what": "bf16 within tolerance of float32", "target": True, "value": record.get("passed"),
                     "met": record.get("passed")})
    return rows
