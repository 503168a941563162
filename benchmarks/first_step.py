"""Seconds from process start to the first optimizer step, and where they go: `oneword demo` (the bundled toy
model) and `oneword train` on tiny-sd1 (the tiny random model), each run as the command line runs it, in a fresh
interpreter, stopped at its first optimizer step.

Each run is split into imports (every top-level import, wherever it happens), the stretches the code path times
with `oneword.timing.timed` (model load, latent caching, validation set-up, scorers...), the demo's own stages
(writing the examples, loading the judge, judging the baseline: timed from here, around the toy world's
functions) and interpreter start; each figure is the time spent in that stretch and not in one inside it (an import
inside the model load counts as imports). What no stretch covers is `other`. Stretches under 0.2 s are summed
into `other` too.

The reference is the same run with the cuts switched off, measured in the same rounds (each round runs the
reference, then the current code): the modules the loop no longer imports before the first step (CUT_IMPORTS)
are imported first, as they used to be. The last lines give each run's median total beside its reference's and
the ratio.

    python benchmarks/first_step.py                # both runs, 3 rounds each, the median
    python benchmarks/first_step.py --runs demo --rounds 1
"""

from __future__ import annotations

import argparse
import builtins
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CUT_IMPORTS = ("oneword.generate.txt2img",)
"""What the training loop imported before its first step and now imports when it first needs it (the preview):
diffusers' Stable Diffusion and SDXL pipelines, the safety checker, CLIP's vision model."""
SHOWN = 0.2
"""Stretches shorter than this (seconds) are counted in `other`."""


class FirstStep(BaseException):
    """Raised at the first optimizer step: the run has shown what this script measures (a BaseException, so that
    the command line's last line of defence lets it through)."""


def child(which: str, started: float, out: Path, reference: bool = False) -> None:
    """Run one command line until its first optimizer step (with `reference`, the cuts switched off); write its
    stretches (name, start, end) to `out`."""
    events: list[tuple[str, float, float]] = [("interpreter start", started, time.time())]
    depth = [0]
    real_import = builtins.__import__

    def timed_import(*args, **kwargs):
        if depth[0]:
            return real_import(*args, **kwargs)
        depth[0] += 1
        start = time.time()
        try:
            return real_import(*args, **kwargs)
        finally:
            depth[0] -= 1
            if time.time() - start > 1e-3:
                events.append(("imports", start, time.time()))

    builtins.__import__ = timed_import
    from oneword import timing

    def listen(name: str, start: float, end: float) -> None:
        events.append((name, start, end))
        if name == "optimizer step":
            raise FirstStep

    with timing.recording(listen):
        if which == "demo":
            _wrap_demo_stages()
        work = Path(tempfile.mkdtemp(prefix="first-step-"))
        os.chdir(work)
        if which == "demo":
            args = ["demo", "--log-dir", str(work / "log"), "--steps", "300"]
        else:
            _write_images(work / "data")
            args = ["train", "zqx", "--model", "tiny-sd1", "--data", str(work / "data"), "--init-text", "ball",
                    "--log-dir", str(work / "log"), "--embeddings-dir", str(work / "emb"), "--max-steps", "10"]
        sys.argv = ["oneword", *args]
        from oneword.cli import main

        if reference:
            for name in CUT_IMPORTS:
                __import__(name)

        try:
            main()
        except FirstStep:
            events.append(("first step", time.time(), time.time()))
    out.write_text(json.dumps(events))


def _wrap_demo_stages() -> None:
    """Time the toy world's stages of the demo from outside it (the demo imports them when it runs)."""
    from oneword import timing
    from oneword.toy import bundle, concepts, report

    for module, name, label in ((concepts, "write_concept_examples", "writing the examples"),
                                (bundle, "load_judge", "judge load"), (report, "concept_rate", "baseline judging")):
        function = getattr(module, name)

        def wrapped(*args, _function=function, _label=label, **kwargs):
            with timing.timed(_label):
                return _function(*args, **kwargs)

        setattr(module, name, wrapped)


def _write_images(folder: Path, n: int = 4) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")).save(folder / f"{i:05d}-0-a red ball.png")


def exclusive(events: list[tuple[str, float, float]]) -> tuple[float, dict[str, float]]:
    """Total seconds from the first start to the first step, and the seconds of each name where it is the
    innermost stretch (the latest started of those covering the moment)."""
    begin = min(start for _, start, _ in events)
    end = next(start for name, start, _ in events if name == "first step")
    cuts = sorted({t for _, s, e in events for t in (s, e) if begin <= t <= end} | {begin, end})
    seconds: dict[str, float] = {}
    for a, b in itertools.pairwise(cuts):
        covering = [(s, name) for name, s, e in events if s <= a and e >= b and name != "first step"]
        name = max(covering)[1] if covering else "other"
        seconds[name] = seconds.get(name, 0.0) + (b - a)
    return end - begin, seconds


def measure(which: str, reference: bool = False) -> tuple[float, dict[str, float]]:
    """One run of `which` in a fresh interpreter (the reference: with the cuts switched off)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "events.json"
        started = time.time()
        done = subprocess.run([sys.executable, __file__, "--child", which, "--started", repr(started), "--out",
                               str(out), *(["--reference"] if reference else [])], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0 or not out.exists():
            raise SystemExit(f"{which} failed:\n{done.stderr[-3000:]}")
        return exclusive(json.loads(out.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["demo", "tiny-sd1"], choices=["demo", "tiny-sd1"])
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each; the median is shown.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.started, args.out, args.reference)
        return
    totals = {}
    for which in args.runs:
        rounds = [(measure(which, reference=True), measure(which)) for _ in range(args.rounds)]
        for label, runs in ((f"{which} (reference: cuts off)", [r for r, _ in rounds]), (which, [c for _, c in rounds])):
            total = statistics.median(t for t, _ in runs)
            _show(label, total, runs)
            totals[label] = total
        reference = totals[f"{which} (reference: cuts off)"]
        totals[which] = (totals[which], reference)
    for which in args.runs:
        total, reference = totals[which]
        print(f"{which}: {total:.2f} s, reference {reference:.2f} s: {total / reference:.2f}x")


def _show(label: str, total: float, runs: list[tuple[float, dict[str, float]]]) -> None:
    names = {name for _, parts in runs for name in parts}
    parts = {name: statistics.median(p.get(name, 0.0) for _, p in runs) for name in names}
    other = parts.pop("other", 0.0) + sum(v for v in parts.values() if v < SHOWN)
    print(f"{label}: {total:.2f} s to the first optimizer step (median of {len(runs)})")
    for name, value in sorted(((n, v) for n, v in parts.items() if v >= SHOWN), key=lambda item: -item[1]):
        print(f"  {name:<24} {value:6.2f} s")
    print(f"  {'other':<24} {other:6.2f} s")


if __name__ == "__main__":
    main()
