"""The GPU suite: every training speed, memory and precision figure of docs/benchmarks.md's "GPU suite" in one run of
under 8 minutes on one H100/H200-class card, written as one JSON file and one markdown table.

Parts (gpu_parts.PARTS): Textual Inversion on the SD 1.5 architecture at 512 px (batch 1 and 8), a rank-16 LoRA on
SD 1.5 at 512 px (batch 1), Textual Inversion on SDXL at 1024 px (batch 1), each oneword's trainer beside the
reference loop in the same run (`train_speed.py`: steps per second, the allocator's peak GPU memory with the
weights, the UNet's TFLOP/s against the card's bf16 peak); and 20 steps in bf16 against the same 20 in float32
(TI and LoRA on SD 1.5: finite, and within the stated tolerances). The models have the real architectures and
random weights (seed 0): nothing is downloaded.

Each part runs in a child process forked from this one (the libraries imported once), under its own time budget
and the whole run's: a part that fails, crashes or runs out of time is recorded as such, with what it measured
until then, and the next part runs. The files are rewritten after every part.

    python benchmarks/gpu_suite.py --out outputs/gpu-suite              # on the GPU (benchmarks/gpu_suite.sh)
    python benchmarks/gpu_suite.py --smoke --out /tmp/smoke             # the same code on the CPU, tiny models
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import sys
import time
import traceback
from pathlib import Path

# torch.cuda.is_available() through NVML: asked before a fork (by a library, say), it leaves CUDA uninitialised
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

import torch

sys.path.insert(0, str(Path(__file__).parent))  # train_speed.py, gpu_parts.py, gpu_report.py beside this file

import gpu_parts
from gpu_report import markdown

SMOKE_BUDGET_S = 60.0
"""Seconds each part may take in a smoke run."""


def child(part: gpu_parts.Part, path: Path, smoke: bool, device: str, threads: int) -> None:
    """A part in its own process: its record saved to `path` as it fills, and its error if it fails."""
    if threads:
        torch.set_num_threads(threads)
    record = {"status": "running"}

    def save() -> None:  # whole or not at all: the parent may stop this process at any moment
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(record, indent=1))
        os.replace(partial, path)

    try:
        gpu_parts.run_part(part, record, save, smoke, torch.device(device))
    except Exception as error:  # the process's boundary: recorded for the report, then raised to end the process
        record.update(status="error", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
        save()
        raise
    record["status"] = "ok"
    save()


def run_forked(part: gpu_parts.Part, folder: Path, budget: float, smoke: bool, device: str, threads: int,
               start: str = "fork") -> dict:
    """Run `part` in a child process (`start`: multiprocessing's fork or spawn) for at most `budget` seconds; its
    record, with how it ended."""
    path = folder / f".{part.name}.json"
    path.unlink(missing_ok=True)
    process = multiprocessing.get_context(start).Process(target=child, args=(part, path, smoke, device, threads),
                                                         daemon=True)  # ended with this process, if it is stopped
    began = time.perf_counter()
    process.start()
    process.join(budget)
    timed_out = process.is_alive()
    if timed_out:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
    record = json.loads(path.read_text()) if path.exists() else {"status": "running"}
    path.unlink(missing_ok=True)
    path.with_suffix(".partial").unlink(missing_ok=True)
    if timed_out:
        record.update(status="timeout", error=f"ran past its budget of {budget:.3g} s")
    elif process.exitcode != 0 and record["status"] != "error":
        record.update(status="crashed", error=f"the part's process ended with exit code {process.exitcode}")
    record.update(name=part.name, title=part.title, budget_s=round(budget, 1),
                  wall_s=round(time.perf_counter() - began, 1))
    record["targets"] = gpu_parts.targets(part, record)
    return record


def preload() -> None:
    """Import what every part imports, once, before the forks (nothing here touches CUDA, which a fork must not
    inherit)."""
    import diffusers.models.attention_processor  # noqa: F401

    import oneword.models.build
    import oneword.models.tiny
    import oneword.train.loop  # noqa: F401


def header(args: argparse.Namespace) -> dict:
    """What the run was: when, on what, with which versions and settings."""
    import diffusers
    import transformers

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "smoke": args.smoke,
        "device": args.device, "budget_s": args.budget, "host": platform.node(), "python": platform.python_version(),
        "torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        "cpu_threads": args.threads or torch.get_num_threads(),
    }


def write(folder: Path, report: dict) -> None:
    """gpu_suite.json and gpu_suite.md in `folder`, each written whole."""
    for name, text in (("gpu_suite.json", json.dumps(report, indent=1) + "\n"), ("gpu_suite.md", markdown(report))):
        partial = folder / f".{name}.partial"
        partial.write_text(text)
        os.replace(partial, folder / name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [p.name for p in gpu_parts.PARTS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu-suite"),
                        help="folder for gpu_suite.json and gpu_suite.md (default: outputs/gpu-suite)")
    parser.add_argument("--smoke", action="store_true",
                        help="the same code on the CPU, on the tiny models, a couple of steps (under a minute)")
    parser.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda, or cpu with --smoke")
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds for the whole run; each part also has its own (default: 420)")
    parser.add_argument("--only", action="append", choices=names, metavar="PART",
                        help=f"run only this part (repeatable): {', '.join(names)}")
    parser.add_argument("--part-budget", type=float, default=0.0,
                        help="seconds each part may take, instead of its own (0: its own; 60 with --smoke)")
    parser.add_argument("--spawn", action="store_true",
                        help="start each part in a fresh interpreter rather than a fork (slower: each imports again)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per part (0: torch's default)")
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every part (or `--only` these) and write the report; 0 when every part ran to its end."""
    args = parse_args(argv)
    from oneword.offline import go_offline, quiet_libraries

    go_offline()
    quiet_libraries()
    preload()
    # a fork must not inherit an initialised CUDA: if an import initialised it, every part starts afresh instead
    method = "spawn" if args.spawn or torch.cuda.is_initialized() else "fork"
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report = {**header(args), "start_method": method, "parts": []}
    for part in gpu_parts.PARTS:
        if args.only and part.name not in args.only:
            continue
        left = args.budget - (time.perf_counter() - start)
        budget = min(args.part_budget or (SMOKE_BUDGET_S if args.smoke else part.budget_s), left)
        if left < 5:
            record = {"name": part.name, "title": part.title, "status": "skipped",
                      "error": f"the run's budget of {args.budget:.0f} s was spent", "budget_s": 0.0}
            record["targets"] = gpu_parts.targets(part, record)
        else:
            print(f"{part.name}: {part.title} (budget {budget:.0f} s)", flush=True)
            record = run_forked(part, args.out, budget, args.smoke, args.device, args.threads, method)
        print(f"{part.name}: {record['status']} in {record.get('wall_s', 0):.0f} s"
              + (f" ({record['error']})" if "error" in record else ""), flush=True)
        report["parts"].append(record)
        report["wall_s"] = round(time.perf_counter() - start, 1)
        write(args.out, report)
    print(markdown(report), flush=True)
    print(f"wrote {args.out / 'gpu_suite.json'} and {args.out / 'gpu_suite.md'}", flush=True)
    return 0 if all(p["status"] == "ok" for p in report["parts"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
