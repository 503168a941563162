"""A short training killed at each file operation in turn, then resumed: `python kill_driver.py OUT KIND`.

One process builds the tiny model once; every run is a forked child of it. A run is killed by `os._exit(9)` (what
SIGKILL does: no cleanup, no flush) at its Nth file operation (`os.replace` or `os.unlink`), before the operation
happens. OUT/whole is the uninterrupted run, OUT/kill-N the run killed at operation N and then resumed with
`--resume` (started afresh when it was killed before its first checkpoint was complete, as a user would). The
kill-and-resume pairs are independent, so two run at once where there are two cores.
OUT/result.json holds the number of operations and every child's exit code.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

KINDS = {
    "embedding": {},
    "hypernetwork": {"kind": "hypernetwork", "learn_rate": "0.001", "template": "hypernetwork"},
    "lora": {"kind": "lora", "learn_rate": "0.01", "text_encoder_lr": "0.005"},
    "pivotal": {"kind": "pivotal", "learn_rate": "0.01", "text_encoder_lr": "0.005", "vectors_lr": "0.05"},
}
"""The settings of each kind's run beyond the common ones (its rates, a hypernetwork's template)."""
OWN = "own"
"""The folder of the trained file NAME.pt or NAME.safetensors (embeddings, hypernetwork and LoRA folder alike)."""


class StepScorer:
    """A deterministic score by step: the best checkpoint is step 4, not the last."""

    key = "fake"

    def score(self, context):
        return {"fake": {2: 0.5, 4: 0.9, 6: 0.7}.get(context.snapshot.step, 0.1)}


def arm(kill_at: int, count: list[int]) -> None:
    """Count file operations; exit at once, as a SIGKILL would, before operation `kill_at` (0: never)."""
    for name in ("replace", "unlink"):
        real = getattr(os, name)

        def operation(*args, _real=real, **kwargs):
            count[0] += 1
            if count[0] == kill_at:
                os._exit(9)
            return _real(*args, **kwargs)

        setattr(os, name, operation)


def child(work) -> int:
    """Run `work()` in a forked child; its exit code (1 on an exception, printed)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            work()
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def in_turn(jobs: dict[int, object], workers: int) -> None:
    """Run each job (a function) in a forked child, `workers` at a time."""
    waiting, running = list(jobs), set()
    while waiting or running:
        while waiting and len(running) < workers:
            job = jobs[waiting.pop(0)]
            pid = os.fork()
            if pid == 0:
                job()
                os._exit(0)
            running.add(pid)
        running.discard(os.wait()[0])


def main(out: Path, kind: str) -> None:
    import torch

    torch.set_num_threads(1)
    from matplotlib.figure import Figure
    from train_helpers import settings, write_images

    from oneword.errors import OnewordError
    from oneword.models.tiny import build_tiny
    from oneword.offline import go_offline
    from oneword.train import pictures
    from oneword.train.loop import train

    go_offline()
    # loss.png is drawn blank: written by the same file operations, without the drawing (half of a short run's time)
    pictures.loss_figure = lambda *args, **kwargs: Figure(figsize=(1, 1))
    model = build_tiny("sd1", seed=0)  # each child trains its own copy
    data = write_images(out / "data")

    def run(folder: Path, resume: bool) -> None:
        own = folder / OWN
        config = settings(folder, data=data, max_steps=6, save_every=2, validate_every=2, validation_size=2,
                          preview_every=4, csv_every=1, resume=resume, embeddings_dir=own, hypernetwork_dir=own,
                          lora_dir=own, **KINDS[kind])
        train(config, model, device="cpu", scorers=[StepScorer()])

    def whole() -> None:
        count = [0]
        arm(0, count)
        run(out / "whole", False)
        (out / "operations").write_text(str(count[0]))

    codes = {"whole": child(whole)}
    operations = int((out / "operations").read_text())

    def resume(folder: Path) -> None:
        try:
            run(folder, True)
        except OnewordError as error:
            if "--resume: there is no" not in str(error):
                raise
            run(folder, False)

    def pair(n: int) -> None:
        folder = out / f"kill-{n}"
        killed = child(lambda: (arm(n, [0]), run(folder, False)))
        resumed = child(lambda: resume(folder))
        (out / f"codes-{n}.json").write_text(json.dumps([killed, resumed]))

    in_turn({n: lambda n=n: pair(n) for n in range(1, operations + 1)}, min(2, len(os.sched_getaffinity(0))))
    for n in range(1, operations + 1):
        codes[f"kill-{n}"], codes[f"resume-{n}"] = json.loads((out / f"codes-{n}.json").read_text())
    (out / "result.json").write_text(json.dumps({"operations": operations, "codes": codes}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
