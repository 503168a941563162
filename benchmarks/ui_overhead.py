"""Training steps per second with the web UI open against the command line, same settings, same machine.

Writes the toy world's 12 star pictures into a temporary workspace, then alternates, for each round:
- the CLI: `oneword train` in its own process, the rate read from its progress line;
- the UI: `oneword ui` in its own process, a headless Chromium page filling the Train tab, pressing Start and
  staying on the tab (it polls the job every second and redraws the curves) until the run ends; the rate read
  from the finished status line.
Both rates are the training loop's own measure (steps done / time since the loop began, model loading and setup
excluded). Prints each round, the medians and their ratio, and the median of each round's ratio (the two runs of a
round are next to each other in time, so a busy machine's drift weighs less there). Target: the UI at least 0.95
of the CLI.

Both processes get the same compute threads (`--threads`, default 1 through OMP_NUM_THREADS): on a busy 2-core
machine PyTorch's default two OpenMP threads in the main thread spin against other work and run several times
slower than one, while a worker thread does not suffer as much, which would flatter the UI; `--threads 0` keeps
PyTorch's default on both sides.

    python benchmarks/ui_overhead.py                      # 300 steps, 3 rounds, one compute thread
    python benchmarks/ui_overhead.py --steps 100 --rounds 1 --threads 0
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

RATE = re.compile(r"([\d.]+) it/s")


def settings(steps: int) -> dict[str, object]:
    """The run both sides make: toy model, no checkpoints, previews or validation (only steps are timed)."""
    return {"max-steps": steps, "save-every": 0, "preview-every": 0, "validate-every": 0}


def environment(threads: int) -> dict[str, str]:
    """This process's environment, with `threads` OpenMP threads (0: PyTorch's default)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    return {**env, "OMP_NUM_THREADS": str(threads)} if threads else env


def cli_rate(workspace: Path, steps: int, name: str, threads: int) -> float:
    """`oneword train` in a fresh process: the rate on its last progress line."""
    options = [f"--{k}={v}" for k, v in settings(steps).items()]
    result = subprocess.run([sys.executable, "-m", "oneword", "train", name, "--data", "datasets/star", *options],
                            cwd=workspace, capture_output=True, text=True, check=True, env=environment(threads))
    return float(RATE.findall(result.stdout + result.stderr)[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the UI server exited: {server.stdout.read() if server.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise SystemExit("the UI server did not start")


def ui_rate(workspace: Path, steps: int, name: str, chromium: str, threads: int) -> float:
    """`oneword ui` in a fresh process, trained from an open page: the rate on the finished status line."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "oneword", "ui", "--workspace", str(workspace), "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=environment(threads))
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(3_600_000)
            page.goto(url)
            page.get_by_role("tab", name="Train", exact=True).first.click()
            values = {"train-name": name, "train-data": "datasets/star"}
            values.update({f"train-{k}": v for k, v in settings(steps).items()})
            for title in ("Steps and files", "Validation, scores and stopping"):
                page.get_by_text(title, exact=True).first.click()
            for elem_id, value in values.items():
                field = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
                field.fill(str(value))
                field.blur()
            page.click("#train-start-button")
            page.locator("#train-status", has_text="finished").wait_for()
            status = page.locator("#train-status").inner_text()
            browser.close()
        return float(RATE.findall(status)[-1])
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="compute threads of both sides (0: the default)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args()
    if not args.chromium:
        raise SystemExit("no chromium executable: install Debian's `chromium` or pass --chromium PATH")
    from oneword.toy.concepts import get_concept, write_concept_examples

    cli, ui = [], []
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        write_concept_examples(get_concept("star"), workspace / "datasets" / "star")
        for r in range(args.rounds):
            cli.append(cli_rate(workspace, args.steps, f"cli{r}", args.threads))
            ui.append(ui_rate(workspace, args.steps, f"ui{r}", args.chromium, args.threads))
            print(f"round {r + 1}: CLI {cli[-1]:.2f} it/s, UI {ui[-1]:.2f} it/s", flush=True)
    c, u = statistics.median(cli), statistics.median(ui)
    paired = statistics.median(b / a for a, b in zip(cli, ui, strict=True))
    threads = args.threads or "default"
    print(f"{args.steps} steps, {threads} thread(s), median of {args.rounds}: CLI {c:.2f} it/s, UI open {u:.2f} it/s, "
          f"ratio {u / c:.3f}; median of the rounds' ratios {paired:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
