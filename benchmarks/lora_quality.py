"""Does a LoRA learn objects and a style? Judged rates of `oneword train --kind lora` on the toy world.

Three measurements (the first argument), each printing its figures and its reference from the same process. Every
run uses the LoRA kind's defaults for the model (on the toy model its own rates and batch); only the step counts
and the checkpoint spacing are set (and, for trials, what `--set FIELD=VALUE` names). Checkpoints are read back
from their files (`lora/NAME-STEP.safetensors`) and judged with the LoRA applied outside the run, on sampling seeds
from `--sample-seed` (5000: seeds no trial was judged on).

- objects: every hidden object concept (star, cross, crescent), trained on its 12 pictures with NAME (the concept's
  name, a word the toy model never saw) in the prompts through the default template's [name]. Per checkpoint: how
  often "a photo of NAME" is drawn as the concept, and how often "a photo of a COLOUR NAME" keeps the colour over
  the five colours. Reference: the base model alone, on the best prompt without the LoRA ("a photo of an object",
  as benchmarks/concept_accuracy.py) and on the same prompts.
- style: the outline style trained with a template without [name] (`hypernetwork`, as benchmarks/hypernetwork_style.py
  trains a hypernetwork): "a COLOUR SHAPE" over the three named shapes and five colours, per checkpoint at weight 1,
  and the last one at weight 0 (which must draw the base model's images exactly) against the base model.
- stop: every object concept to a 2,000-step maximum, judged at every validation checkpoint (every 50 steps); the
  plateau rule of `--stop auto` replayed on the validation loss (benchmarks/stopping.py's code: the rule reads only
  past measurements, so it stops where a `--stop auto` run stops), and its chosen checkpoint against the run's best
  judged one, both judged again on fresh seeds.

    python benchmarks/lora_quality.py objects --json objects.json           # the recorded figures (seeds 0, 1)
    python benchmarks/lora_quality.py style --json style.json
    python benchmarks/lora_quality.py stop --json stop.json
    python benchmarks/lora_quality.py objects --seeds 0 --sample-seed 1000 --set learn_rate=0.0002   # a trial
    python benchmarks/lora_quality.py objects --seeds 2,3                    # the defaults on seeds not tuned on
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

PARTS = {"objects": (300, 50), "style": (1000, 250), "stop": (2000, 50)}
"""Each measurement's default --max-steps and --every."""
OBJECTS = ("star", "cross", "crescent")


@contextlib.contextmanager
def lora_applied(model, lora, weight: float = 1.0):
    """`lora` added to the layers it names at `weight`, by forward hooks: each layer's output gains
    weight * layer.forward(module, x), kohya's `W x + w * (alpha / rank) * up(down(x))`."""
    from oneword.lora.names import places

    where = places(model)
    unknown = sorted(set(lora.layers) - set(where))
    if unknown:
        raise ValueError(f"{lora.name}: {len(unknown)} layers fit no layer of the model, such as {unknown[0]}")
    handles = []
    for key, layer in lora.layers.items():
        def hook(module, args, output, layer=layer):
            return output + weight * layer.forward(module, args[0])
        handles.append(where[key].module.register_forward_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def colour_kept(model, judge, name: str, rc) -> float:
    """How often "a photo of a COLOUR NAME" is drawn in that colour, over every colour word (`rc.samples` in all)."""
    from oneword.toy.report import agreement, draw
    from oneword.toy.world import COLOURS

    per_colour = -(-rc.samples // len(COLOURS))
    hits = total = 0
    for i, colour in enumerate(COLOURS):
        images = draw(model, f"a photo of a {colour} {name}", per_colour, rc, rc.seed + 7000 + 100 * i)
        hits += round(agreement(judge, images, "colour", colour) * len(images))
        total += len(images)
    return hits / total


def object_rates(model, judge, concept, name: str, rc, lora=None, colour: bool = True) -> dict[str, float]:
    """"a photo of NAME" judged as the concept, and the colour kept, with `lora` applied (None: the model alone)."""
    from oneword.models.device import vae_beside_unet
    from oneword.toy.report import concept_rate

    with vae_beside_unet(model), (lora_applied(model, lora) if lora is not None else contextlib.nullcontext()):
        rates = {"judged": concept_rate(model, judge, concept, f"a photo of {name}", rc, rc.seed)[0]}
        if colour:
            rates["colour"] = colour_kept(model, judge, name, rc)
    return rates


def overrides(pairs: list[str]) -> dict:
    """`--set FIELD=VALUE` pairs as TrainConfig fields (text fields stay text; others are Python literals)."""
    from oneword.train.config import TrainConfig

    types = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"--set {pair}: TrainConfig has no field {key!r}")
        out[key] = value if types[key].startswith("str") else ast.literal_eval(value)
    return out


def train_lora(concept, seed: int, folder: Path, args, steps: int, every: int, **fields):
    """Train a LoRA of `concept` on its pictures with the kind's defaults (and `--set`); returns (run, name, seconds)."""
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import write_concept_examples
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train

    model, _ = load_toy(args.model)
    name = concept.name
    data = write_concept_examples(concept, folder / "data", seed=seed)[0].parent
    config = TrainConfig(name=name, kind="lora", data=data, model=args.model, max_steps=steps, save_every=every,
                         preview_every=0, log_dir=folder / "log", lora_dir=folder / "lora", seed=seed,
                         **{**fields, **overrides(args.set)})
    start = time.perf_counter()
    finished = train(config, model)
    return finished, name, round(time.perf_counter() - start, 1)


def checkpoint_files(finished) -> dict[int, Path]:
    """Step -> checkpoint file of a finished run."""
    return {r.step: Path(r.path) for r in finished.records}


def objects(args) -> list[dict]:
    """The objects measurement: every concept and seed, each checkpoint judged from its file."""
    from oneword.lora.read import read_lora
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import CONCEPTS
    from oneword.toy.report import ReportConfig, baseline_prompt, concept_rate

    rc = ReportConfig(samples=args.samples, seed=args.sample_seed)
    model, judge = load_toy(args.model)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.concepts:
            concept = CONCEPTS[name]
            base = {"best prompt": concept_rate(model, judge, concept, baseline_prompt(concept), rc, rc.seed)[0],
                    **object_rates(model, judge, concept, name, rc)}
            for seed in args.seeds:
                finished, word, seconds = train_lora(concept, seed, Path(tmp) / f"{name}-{seed}", args,
                                                     args.max_steps, args.every)
                model, judge = load_toy(args.model)  # the run's model was prepared for training; judge a fresh one
                per_step = {step: object_rates(model, judge, concept, word, rc, read_lora(path))
                            for step, path in checkpoint_files(finished).items()}
                r = {"concept": name, "seed": seed, "train_seconds": seconds, "base": base, "per_step": per_step}
                results.append(r)
                print(json.dumps(r), flush=True)
    print_objects(results, args)
    return results


def print_objects(results: list[dict], args) -> None:
    steps = list(results[0]["per_step"])
    print("\n| concept | seed | no LoRA (best prompt / \"a photo of NAME\") | "
          + " | ".join(f"step {s}" for s in steps) + " |")
    print("|---|---:|---:|" + "---:|" * len(steps))
    for r in results:
        b = r["base"]
        cells = " | ".join(f"{v['judged']:.1%} / {v['colour']:.1%}" for v in r["per_step"].values())
        print(f"| {r['concept']} | {r['seed']} | {b['best prompt']:.1%} / {b['judged']:.1%} (colour "
              f"{b['colour']:.1%}) | {cells} |")
    print("(each step: judged as the concept / colour kept)")
    last = [r["per_step"][max(r["per_step"])] for r in results]
    met = all(v["judged"] >= 0.95 and v["colour"] >= 0.9 for v in last)
    print(f"last checkpoint: judged {min(v['judged'] for v in last):.1%} at worst (target >= 95%), colour kept "
          f"{min(v['colour'] for v in last):.1%} at worst (target >= 90%): {'met' if met else 'NOT met'}; reference "
          f"(no LoRA, best prompt) at most {max(r['base']['best prompt'] for r in results):.1%}")


def style(args) -> list[dict]:
    """The style measurement: per seed, every checkpoint at weight 1, the last at weight 0, the base model."""
    from oneword.lora.read import read_lora
    from oneword.models.device import vae_beside_unet
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import CONCEPTS
    from oneword.toy.report import ReportConfig, draw
    from oneword.toy.scorer import style_rates

    concept = CONCEPTS["outline"]
    rc = ReportConfig(samples=args.samples, seed=args.sample_seed)
    model, judge = load_toy(args.model)
    base = style_rates(model, judge, concept.style, rc)
    with vae_beside_unet(model):
        base_pixels = [im.tobytes() for im in draw(model, "a red circle", 4, rc, rc.seed)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            finished, _, seconds = train_lora(concept, seed, Path(tmp) / f"outline-{seed}", args, args.max_steps,
                                              args.every, template=args.style_template)
            model, judge = load_toy(args.model)
            files = checkpoint_files(finished)
            per_step = {}
            for step, path in files.items():
                with lora_applied(model, read_lora(path), 1.0):
                    per_step[step] = style_rates(model, judge, concept.style, rc)
            with lora_applied(model, read_lora(files[max(files)]), 0.0):
                zero = style_rates(model, judge, concept.style, rc)
                with vae_beside_unet(model):
                    exact = [im.tobytes() for im in draw(model, "a red circle", 4, rc, rc.seed)] == base_pixels
            r = {"seed": seed, "train_seconds": seconds, "base": base, "per_step": per_step, "weight_0": zero,
                 "weight_0_pixels_equal": exact}
            results.append(r)
            print(json.dumps(r), flush=True)
    print("\n| seed | LoRA | style (outline) | shape obeyed | colour obeyed |")
    print("|---:|---|---:|---:|---:|")
    for r in results:
        rows = [("base model", r["base"]), (f"weight 0 (step {max(r['per_step'])})", r["weight_0"])]
        rows += [(f"weight 1, step {s}", v) for s, v in r["per_step"].items()]
        for label, v in rows:
            print(f"| {r['seed']} | {label} | {v['style']:.1%} | {v['shape']:.1%} | {v['colour']:.1%} |")
    exact = all(r["weight_0"] == r["base"] and r["weight_0_pixels_equal"] for r in results)
    print(f"\nweight 0 equals the base model (verdicts, and the pixels of 4 samples) in every run: {exact}")
    last = [r["per_step"][max(r["per_step"])] for r in results]
    met = all(v["style"] >= 0.85 and v["shape"] >= 0.9 and v["colour"] >= 0.9 for v in last)
    print("last checkpoint at weight 1: style " + ", ".join(f"{v['style']:.1%}" for v in last) + " (target >= 85%), "
          f"shape and colour at worst {min(min(v['shape'], v['colour']) for v in last):.1%} (target >= 90%): "
          f"{'met' if met else 'NOT met'} (the hypernetwork's best: 75.8 / 96.7 / 91.7)")
    return results


def stop_run(concept, seed: int, folder: Path, args) -> dict:
    """One LoRA run to --max-steps, every checkpoint judged; where `--stop auto` stops and what it chooses."""
    from stopping import default_rule, replay

    from oneword.lora.read import read_lora
    from oneword.toy.bundle import load_toy
    from oneword.toy.report import ReportConfig

    finished, word, seconds = train_lora(concept, seed, folder, args, args.max_steps, args.every,
                                         stop_signal="val_loss")
    model, judge = load_toy(args.model)
    files = checkpoint_files(finished)
    rc = ReportConfig(samples=args.samples, seed=1000)
    judged = {step: object_rates(model, judge, concept, word, rc, read_lora(path), colour=False)["judged"]
              for step, path in files.items()}
    fresh_rc = ReportConfig(samples=args.final_samples, seed=args.sample_seed)
    fresh: dict[int, float] = {}

    def judged_fresh(step: int) -> float:
        if step not in fresh:
            fresh[step] = object_rates(model, judge, concept, word, fresh_rc, read_lora(files[step]),
                                       colour=False)["judged"]
        return fresh[step]

    records = [r for r in finished.records if r.step % args.every == 0]
    stop, chosen = replay("val_loss", [(r.step, r.val_loss) for r in records], records, default_rule())
    best = max(judged, key=lambda s: (judged[s], -s))
    return {"concept": concept.name, "seed": seed, "train_seconds": seconds, "max_steps": args.max_steps,
            "judged": judged, "val_loss": {r.step: r.val_loss for r in records},
            "first_90": next((s for s, v in judged.items() if v >= 0.9), None),
            "stop": stop, "steps_ratio": args.max_steps / (stop or args.max_steps),
            "chosen": {"step": chosen.step, "judged": judged_fresh(chosen.step)},
            "best": {"step": best, "judged": judged_fresh(best)}}


def stop(args) -> list[dict]:
    """The stopping measurement: every object concept and seed."""
    from oneword.toy.concepts import CONCEPTS

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.concepts:
            for seed in args.seeds:
                r = stop_run(CONCEPTS[name], seed, Path(tmp) / f"{name}-{seed}", args)
                results.append(r)
                print(json.dumps(r), flush=True)
    print("\n| concept | seed | first >= 90% | stopped at | steps saved | chosen | chosen judged | run's best judged |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['concept']} | {r['seed']} | {r['first_90']} | {r['stop']} | {r['steps_ratio']:.1f}x | "
              f"{r['chosen']['step']} | {r['chosen']['judged']:.1%} | {r['best']['judged']:.1%} "
              f"(step {r['best']['step']}) |")
    gaps = [r["best"]["judged"] - r["chosen"]["judged"] for r in results]
    ratios = [r["steps_ratio"] for r in results]
    print(f"\nchosen vs the run's best: mean gap {statistics.fmean(gaps):.1%}, worst {max(gaps):.1%} (target <= 2 "
          f"points); steps saved against {args.max_steps}: min {min(ratios):.1f}x, mean {statistics.fmean(ratios):.1f}x "
          "(target >= 5x)")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=tuple(PARTS), help="what to measure (see the module's docstring)")
    parser.add_argument("--model", default="toy", help="the toy model: toy (bundled) or a folder")
    parser.add_argument("--seeds", default="0,1", help="training seeds (the pictures, the LoRA's start, the noise)")
    parser.add_argument("--concepts", default=",".join(OBJECTS), help="objects, stop: comma-separated concepts")
    parser.add_argument("--max-steps", type=int, help="default: objects 300, style 1000, stop 2000")
    parser.add_argument("--every", type=int, help="checkpoint (and judging) interval; default: 50, 250, 50")
    parser.add_argument("--samples", type=int, help="judged samples per prompt and checkpoint; default: 64, 120, 32")
    parser.add_argument("--final-samples", type=int, default=256, help="stop: fresh samples judging chosen vs best")
    parser.add_argument("--sample-seed", type=int, default=5000,
                        help="first sampling seed of the judged figures (trials: 1000; the recorded figures: 5000)")
    parser.add_argument("--style-template", default="hypernetwork", help="style: a template without [name]")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a trial: a TrainConfig field instead of the kind's default (rank=8, learn_rate=1e-4)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    steps, every = PARTS[args.part]
    args.max_steps, args.every = args.max_steps or steps, args.every or every
    args.samples = args.samples or {"objects": 64, "style": 120, "stop": 32}[args.part]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.concepts = [c for c in args.concepts.split(",") if c]

    from oneword import kinds
    from oneword.offline import go_offline, quiet_libraries
    from oneword.train.config import TrainConfig

    go_offline()
    quiet_libraries()
    torch.manual_seed(0)
    lora, made = kinds.get("lora"), TrainConfig(kind="lora", model=args.model)
    decided = (*lora.defaults, *getattr(lora, "model_defaults", {}).get(args.model, {}))
    defaults = {name: getattr(made, name) for name in dict.fromkeys(decided)}
    print(f"{args.part}: the lora kind's defaults on {args.model} {defaults}; --set {args.set or 'none'}; "
          f"{args.max_steps} steps, a checkpoint every {args.every}; seeds {args.seeds}", flush=True)
    results = {"objects": objects, "style": style, "stop": stop}[args.part](args)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
