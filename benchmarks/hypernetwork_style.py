"""Does a hypernetwork learn a style on the toy world? Prompts with no special word should take it on.

For each seed, a hypernetwork is trained on the toy world's style concept (`outline`: any shape drawn as a thick
outline; the captions never mention it) with `oneword train-hypernetwork`'s settings (A1111's `hypernetwork`
template, structure 1, 2, 1, every width) but its own `--learn-rate` and `--batch` (docs/benchmarks.md says why the
toy model's differ from SD's 1e-5 and 1). At every checkpoint the judge reads samples of "a COLOUR SHAPE" over every
named shape and colour, with the hypernetwork applied as it is being trained: the style rate, and how often the shape
and colour asked for are obeyed. The run's
final hypernetwork is then loaded from its file and judged on fresh seeds at strengths 0, 0.5 and 1, against the
base model alone (strength 0 must give the base model's images exactly).

    python benchmarks/hypernetwork_style.py                                 # the recorded figures
    python benchmarks/hypernetwork_style.py --seeds 0 --max-steps 500 --every 250   # quick look
    python benchmarks/hypernetwork_style.py --seeds 0 --max-steps 2400 --every 800 --trial --split-paths
        # a trial of settings: every checkpoint judged at strength 1, also on each attention path alone
        # (--split-branches: also on each branch of classifier-free guidance alone)
    python benchmarks/hypernetwork_style.py --base-by-style 480   # the base model's own outlines
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch


class Timed:
    """A scorer wrapper that adds up the seconds spent in it (judging is the benchmark's cost, not the user's)."""

    def __init__(self, scorer) -> None:
        self.scorer, self.key, self.seconds = scorer, scorer.key, 0.0

    def score(self, context) -> dict[str, float]:
        start = time.perf_counter()
        try:
            return self.scorer.score(context)
        finally:
            self.seconds += time.perf_counter() - start


def one_run(seed: int, folder: Path, args) -> dict:
    """Train one seed's hypernetwork, judging every checkpoint, then judge its last file at several strengths (with
    --trial: every checkpoint's file at strength 1, on each attention path with --split-paths)."""
    from oneword import kinds
    from oneword.hypernetworks.create import CreateHypernetworkConfig, create_hypernetwork_file
    from oneword.hypernetworks.formats import load_hypernetwork
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import CONCEPTS, write_concept_examples
    from oneword.toy.report import ReportConfig
    from oneword.toy.scorer import JudgeScorer, style_rates
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train

    model, judge = load_toy(args.model)
    concept = CONCEPTS["outline"]
    data = write_concept_examples(concept, folder / "data", n=args.examples, seed=seed)[0].parent
    scorer = Timed(JudgeScorer(concept, judge, samples=args.samples, seed=1000))
    create_hypernetwork_file(model, CreateHypernetworkConfig(
        f"outline-s{seed}", modules=args.modules, layer_structure=args.layer_structure, activation=args.activation,
        layer_norm=args.layer_norm, use_dropout=bool(args.dropout_structure),
        dropout_structure=args.dropout_structure or "0, 0, 0", hypernetwork_dir=folder / "hypernetworks", seed=seed))
    settings = {**kinds.get("hypernetwork").defaults, "learn_rate": args.learn_rate, "batch_size": args.batch,
                "caption_dropout": args.caption_dropout}
    config = TrainConfig(name=f"outline-s{seed}", kind="hypernetwork", data=data, model=args.model,
                         max_steps=args.max_steps, save_every=args.every, validate_every=args.every, preview_every=0,
                         stop_signal="val_loss", log_dir=folder / "log", hypernetwork_dir=folder / "hypernetworks",
                         seed=seed, **settings)
    start = time.perf_counter()
    with trained_on(args.train_path):
        finished = train(config, model, scorers=[] if args.trial else [scorer])
    seconds = time.perf_counter() - start - scorer.seconds

    final = ReportConfig(samples=args.final_samples, seed=5000)
    if args.trial:
        paths = ("both",) + (("self", "cross") if args.split_paths else ()) + (
            ("cond", "uncond") if args.split_branches else ())
        files = {r.step: finished.log_folder / "hypernetworks" / f"{config.name}-{r.step}.pt" for r in finished.records}
        return {"seed": seed, "steps": finished.step, "train_seconds": round(seconds, 1), "trial": {
            step: {p: path_rates(model, judge, concept.style, final, load_hypernetwork(f), p) for p in paths}
            for step, f in files.items()}}
    last = load_hypernetwork(finished.log_folder / "hypernetworks" / f"{config.name}-{finished.step}.pt")
    base = style_rates(model, judge, concept.style, final)
    strengths = {s: style_rates(model, judge, concept.style, final, [(last, s)]) for s in (0.0, 0.5, 1.0)}
    return {
        "seed": seed, "steps": finished.step, "train_seconds": round(seconds, 1),
        "per_checkpoint": {r.step: {k: round(v, 4) for k, v in r.scores.items()} | {"val_loss": r.val_loss}
                           for r in finished.records},
        "base": base, "strengths": strengths,
    }


class OneBranch(torch.nn.Module):
    """A hypernetwork module that transforms the rows of one branch of a guided batch and passes the others through:
    diffusers' pipelines stack the empty prompt's rows (`uncond`) before the prompt's (`cond`)."""

    def __init__(self, module, branch: str) -> None:
        super().__init__()
        self.module, self.branch = module, branch

    def forward(self, x, strength: float = 1.0):
        half = x.shape[0] // 2
        y = self.module(x, strength)
        return torch.cat([x[:half], y[half:]]) if self.branch == "cond" else torch.cat([y[:half], x[half:]])


def on_one_branch(hypernetwork, branch: str):
    """A copy of `hypernetwork` whose modules act on one branch of classifier-free guidance only (a diagnostic)."""
    layers = {w: (OneBranch(k, branch), OneBranch(v, branch)) for w, (k, v) in hypernetwork.layers.items()}
    return dataclasses.replace(hypernetwork, layers=layers)


def attention_layers(unet, path: str) -> list:
    """The UNet's self-attention (`self`) or cross-attention (`cross`) layers."""
    suffix = {"self": ".attn1", "cross": ".attn2"}[path]
    return [m for name, m in unet.named_modules() if name.endswith(suffix) and hasattr(m, "to_k")]


@contextlib.contextmanager
def trained_on(path: str):
    """A diagnostic, not A1111's behaviour: while training, apply the hypernetwork on one attention path only (as
    if the prompt's width had no module, which SD's 768 and the toy's shared 64 differ on). `both` changes nothing."""
    from oneword.train import trainable

    if path == "both":
        yield
        return
    applied = trainable.hypernetworks_applied

    @contextlib.contextmanager
    def on_path(unet, active):
        with contextlib.ExitStack() as stack:
            for layer in attention_layers(unet, path):
                stack.enter_context(applied(layer, active))
            yield

    trainable.hypernetworks_applied = on_path
    try:
        yield
    finally:
        trainable.hypernetworks_applied = applied


def path_rates(model, judge, style: str, rc, hypernetwork, path: str) -> dict[str, float]:
    """Style, shape and colour rates at strength 1 with the hypernetwork on every attention layer (`both`), or on
    self-attention only (`self`: the context is the image's own features) or cross-attention only (`cross`: the
    context is the prompt's), or on one branch of classifier-free guidance only (`cond`: the prompt's prediction,
    `uncond`: the empty prompt's; A1111 and oneword apply it to both)."""
    from oneword.hypernetworks.apply import hypernetworks_applied
    from oneword.toy.scorer import style_rates

    if path == "both":
        return style_rates(model, judge, style, rc, [(hypernetwork, 1.0)])
    if path in ("cond", "uncond"):
        return style_rates(model, judge, style, rc, [(on_one_branch(hypernetwork, path), 1.0)])
    with contextlib.ExitStack() as stack:
        for layer in attention_layers(model.unet, path):
            stack.enter_context(hypernetworks_applied(layer, [(hypernetwork, 1.0)]))
        return style_rates(model, judge, style, rc)


def base_by_style(model_name: str, samples: int) -> dict[str, dict[str, float]]:
    """The base model alone on "a COLOUR SHAPE" (every pair, `samples` in all): per style the judge reads, how many
    images and how often the shape and colour asked for (can the model draw an outline in the right colour?)."""
    from oneword.models.device import vae_beside_unet
    from oneword.toy.bundle import load_toy
    from oneword.toy.judge import to_tensor
    from oneword.toy.report import ReportConfig, draw
    from oneword.toy.world import COLOURS, NAMED_SHAPES

    model, judge = load_toy(model_name)
    pairs = [(shape, colour) for shape in NAMED_SHAPES for colour in COLOURS]
    rc = ReportConfig(samples=samples, seed=9000)
    counts: dict[str, list[int]] = {}
    with vae_beside_unet(model):
        for i, (shape, colour) in enumerate(pairs):
            verdicts = judge.predict(to_tensor(draw(model, f"a {colour} {shape}", -(-samples // len(pairs)), rc,
                                                    rc.seed + 100 * i)))
            for style, got_shape, got_colour in zip(verdicts["style"], verdicts["shape"], verdicts["colour"]):
                c = counts.setdefault(style, [0, 0, 0])
                c[0], c[1], c[2] = c[0] + 1, c[1] + (got_shape == shape), c[2] + (got_colour == colour)
    return {style: {"images": n, "shape": s / n, "colour": c / n} for style, (n, s, c) in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500, help="checkpoint, judging and validation interval")
    parser.add_argument("--learn-rate", default="0.002")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--examples", type=int, default=12, help="pictures in the style's dataset")
    parser.add_argument("--caption-dropout", type=float, default=0.0, help="train-hypernetwork --caption-dropout")
    parser.add_argument("--modules", default="", help="create-hypernetwork --modules (default: every width)")
    parser.add_argument("--layer-structure", default="1, 2, 1")
    parser.add_argument("--activation", default="linear")
    parser.add_argument("--layer-norm", action="store_true")
    parser.add_argument("--dropout-structure", default="", help="like 0, 0.3, 0 (default: no dropout)")
    parser.add_argument("--trial", action="store_true",
                        help="judge every checkpoint at strength 1 (--final-samples each), not the last at 3 strengths")
    parser.add_argument("--train-path", choices=("both", "self", "cross"), default="both",
                        help="a diagnostic: train with the hypernetwork on that attention path only (default: both)")
    parser.add_argument("--split-paths", action="store_true",
                        help="--trial: also judge with the hypernetwork on self-attention only and cross-attention only")
    parser.add_argument("--split-branches", action="store_true",
                        help="--trial: also judge with the hypernetwork on the prompt's branch of classifier-free "
                             "guidance only, and on the empty prompt's only")
    parser.add_argument("--samples", type=int, default=30, help="judged samples per checkpoint")
    parser.add_argument("--final-samples", type=int, default=120, help="fresh samples per strength at the end")
    parser.add_argument("--base-by-style", type=int, metavar="SAMPLES",
                        help="only judge the base model's own outlines and plain shapes on SAMPLES samples")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()

    from oneword.offline import go_offline, quiet_libraries

    go_offline()
    quiet_libraries()
    if args.base_by_style:
        for style, v in base_by_style(args.model, args.base_by_style).items():
            print(f"base model, drawn {style}: {v['images']} images, shape obeyed {v['shape']:.1%}, "
                  f"colour obeyed {v['colour']:.1%}")
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            r = one_run(seed, Path(tmp) / f"s{seed}", args)
            results.append(r)
            if "per_checkpoint" in r:
                curve = ", ".join(f"{step}: {v['judge_accuracy']:.0%}" for step, v in r["per_checkpoint"].items())
                print(f"seed {seed}: {r['steps']} steps in {r['train_seconds']} s; style rate per checkpoint {curve}",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.trial:
        print("\n| seed | step | applied on | style (outline) | shape obeyed | colour obeyed |")
        print("|---:|---:|---|---:|---:|---:|")
        for r in results:
            for step, by_path in r["trial"].items():
                for path, v in by_path.items():
                    print(f"| {r['seed']} | {step} | {path} | {v['style']:.1%} | {v['shape']:.1%} | {v['colour']:.1%} |")
        return 0
    print("\n| seed | strength | style (outline) | shape obeyed | colour obeyed |")
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        rows = [("base model", r["base"])] + [(f"{s:g}", v) for s, v in r["strengths"].items()]
        for label, v in rows:
            print(f"| {r['seed']} | {label} | {v['style']:.1%} | {v['shape']:.1%} | {v['colour']:.1%} |")
    exact = all(r["strengths"][0.0] == r["base"] for r in results)
    print(f"\nstrength 0 equals the base model in every run: {exact}")
    print("target at strength 1: style >= 80%, shape and colour >= 85%: "
          + ", ".join(f"seed {r['seed']} {'met' if _met(r['strengths'][1.0]) else 'NOT met'}" for r in results))
    return 0


def _met(v: dict[str, float]) -> bool:
    return v["style"] >= 0.8 and v["shape"] >= 0.85 and v["colour"] >= 0.85


if __name__ == "__main__":
    raise SystemExit(main())
