"""Does averaging a toy LoRA's weights over its last steps steady its object? The last checkpoint against averages.

A LoRA of one object concept (`oneword train NAME --kind lora`, the kind's defaults for the model and what `--set`
names) is trained for `--steps` with a checkpoint every `--every` steps. Each checkpoint's down and up tensors are
then averaged, as stochastic weight averaging (SWA) and an exponential moving average (EMA, OneTrainer's and
diffusers' `--use_ema`) average a run's weights:
- uniform: the checkpoints of the last W steps (`--windows`), equally;
- EMA: every checkpoint, the one k checkpoints before the last weighted by d**k (`--emas`: d per `--every` steps).

Each LoRA (the last checkpoint, the one 50 steps before it, and the averages) is judged as
benchmarks/lora_quality.py judges an object: "a photo of NAME" as the concept and "a photo of a COLOUR NAME" keeping
its colour, `--samples` samples each from sampling seed `--sample-seed`.

    OMP_NUM_THREADS=1 python benchmarks/lora_average.py --concept cross --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lora_quality import checkpoint_files, object_rates, train_lora


def average(loras: list, weights: list[float]):
    """The LoRA whose every down and up tensor is the `weights`-weighted mean of those of `loras` (same layers)."""
    from oneword.lora.network import LoraLayer

    total = sum(weights)
    layers = {}
    for key, layer in loras[-1].layers.items():
        down = sum(w * lora.layers[key].down.float() for w, lora in zip(weights, loras)) / total
        up = sum(w * lora.layers[key].up.float() for w, lora in zip(weights, loras)) / total
        layers[key] = LoraLayer(down, up, layer.alpha)
    return dataclasses.replace(loras[-1], layers=layers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy", help="the toy model: toy (bundled) or a folder")
    parser.add_argument("--concept", default="cross")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=10, help="checkpoint interval")
    parser.add_argument("--windows", default="100,150", help="uniform averages over the last W steps")
    parser.add_argument("--emas", default="0.9,0.95", help="EMA decays per checkpoint interval")
    parser.add_argument("--samples", type=int, default=64, help="judged samples per prompt")
    parser.add_argument("--sample-seed", type=int, default=17000, help="first sampling seed")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig change")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from oneword.lora.read import read_lora
    from oneword.offline import go_offline, quiet_libraries
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import CONCEPTS
    from oneword.toy.report import ReportConfig

    go_offline()
    quiet_libraries()
    concept = CONCEPTS[args.concept]
    with tempfile.TemporaryDirectory() as tmp:
        finished, word, seconds = train_lora(concept, args.seed, Path(tmp), args, args.steps, args.every)
        files = checkpoint_files(finished)
        steps = sorted(files)
        loras = [read_lora(files[s]) for s in steps]
    candidates = {f"step {steps[-1]}": loras[-1]}
    earlier = [i for i, s in enumerate(steps) if s == steps[-1] - 50]
    if earlier:
        candidates[f"step {steps[earlier[0]]}"] = loras[earlier[0]]
    for window in (int(w) for w in args.windows.split(",")):
        chosen = [lora for s, lora in zip(steps, loras) if s > steps[-1] - window]
        candidates[f"uniform, last {window} steps ({len(chosen)} checkpoints)"] = average(chosen, [1.0] * len(chosen))
    for decay in (float(d) for d in args.emas.split(",")):
        weights = [decay ** (len(loras) - 1 - i) for i in range(len(loras))]
        candidates[f"EMA {decay} per {args.every} steps"] = average(loras, weights)

    model, judge = load_toy(args.model)  # the run's model was prepared for training; judge a fresh one
    rc = ReportConfig(samples=args.samples, seed=args.sample_seed)
    results = {}
    print(f"\n{args.concept}, training seed {args.seed} ({seconds} s of training); judged / colour kept:")
    for label, lora in candidates.items():
        results[label] = object_rates(model, judge, concept, word, rc, lora)
        print(f"- {label}: {results[label]['judged']:.1%} / {results[label]['colour']:.1%}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "train_seconds": seconds,
                                         "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
