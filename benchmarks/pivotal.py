"""Embedding and LoRA together: judged accuracy of Textual Inversion alone, a LoRA alone and pivotal tuning (the two
together, `--kind pivotal`) on the toy world, each at its kind's defaults.

For each object concept (star, cross, crescent) and training seed (0, 1), write the concept's example images (as
`concept_accuracy.py` does), train each kind with `oneword train`'s defaults (only the step counts set: a checkpoint
every --every steps) and let the judge read --samples samples of "a photo of NAME" at every checkpoint, drawn with
the checkpoint as a prompt of it is (the word's vectors spliced in, the LoRA applied at weight 1); with the last
checkpoint also "a photo of a COLOUR NAME" over the five colours (colour kept). Reported per run: accuracy at each
checkpoint, the first step at 90% or more, the last checkpoint's accuracy, colour kept.

    OMP_NUM_THREADS=1 python benchmarks/pivotal.py --json pivotal.json
    OMP_NUM_THREADS=1 python benchmarks/pivotal.py --methods pivotal --pivotal '{"ti_frac": 1.0}'   # a trial
    OMP_NUM_THREADS=1 python benchmarks/pivotal.py --fresh-seed 5000    # the last checkpoints on fresh seeds too
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

METHODS = {"ti": "embedding", "lora": "lora", "pivotal": "pivotal"}
"""The benchmark's name of each method -> the kind it trains."""
TARGET = 0.9


def judged(model, judge, concept, snapshot, name: str, rc, colour: bool = False) -> dict:
    """Accuracy of "a photo of NAME" with `snapshot` as a prompt uses it (and colour kept, with `colour`)."""
    from oneword.lora.apply import loras_applied
    from oneword.toy.report import agreement, concept_rate, draw
    from oneword.toy.world import COLOURS

    words = {name: vectors for vectors in snapshot.token_vectors().values()}  # the checkpoint's word is NAME
    active = [(module, weight, weight) for module, weight in snapshot.network_modules()]
    with loras_applied(model, active):
        out = {"accuracy": concept_rate(model, judge, concept, f"a photo of {name}", rc, rc.seed, words)[0]}
        if colour:
            per_colour, hits, total = -(-rc.samples // len(COLOURS)), 0, 0
            for i, c in enumerate(COLOURS):  # the seeds of oneword.toy.scorer.colour_rate
                images = draw(model, f"a photo of a {c} {name}", per_colour, rc, rc.seed + 7000 + 100 * i, words)
                hits += round(agreement(judge, images, "colour", c) * len(images))
                total += len(images)
            out["colour"] = hits / total
    return out


def run_one(model_name: str, method: str, concept, seed: int, folder: Path, args, changes: dict) -> dict:
    """Train one method on one concept and seed, and judge every checkpoint."""
    from oneword import kinds
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import write_concept_examples
    from oneword.toy.report import ReportConfig
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train

    model, judge = load_toy(model_name)
    kind = kinds.get(METHODS[method])
    name = f"{concept.name}-x"
    data = write_concept_examples(concept, folder / "data")[0].parent
    config = TrainConfig(name=name, kind=kind.name, data=data, model=str(model.source or model.name),
                         init_text=concept.init_text, max_steps=args.steps, save_every=args.every, preview_every=0,
                         validate_every=0, log_dir=folder / "log", embeddings_dir=folder / "embeddings",
                         lora_dir=folder / "lora", seed=seed, **changes)
    start = time.time()
    finished = train(config, model)
    seconds = time.time() - start
    rc = ReportConfig(samples=args.samples, seed=args.sample_seed)
    per_step, files = {}, {}
    for path in finished.log_folder.joinpath(kind.folder).glob(f"{name}-*{kind.suffix(model)}"):
        step = int(path.stem.rsplit("-", 1)[1])
        files[step] = path
        per_step[step] = judged(model, judge, concept, kind.read(path, model), name, rc, colour=step == args.steps)
    per_step = dict(sorted(per_step.items()))
    accuracy = {step: r["accuracy"] for step, r in per_step.items()}
    first = next((step for step, a in accuracy.items() if a >= TARGET), None)
    result = {"method": method, "concept": concept.name, "seed": seed, "per_step": accuracy, "first_90": first,
              "final": accuracy[max(accuracy)], "colour": per_step[max(per_step)].get("colour"),
              "train_seconds": round(seconds, 1)}
    if args.fresh_seed is not None and method in args.fresh_methods.split(","):
        fresh = ReportConfig(samples=args.samples, seed=args.fresh_seed)
        again = judged(model, judge, concept, kind.read(files[max(files)], model), name, fresh, colour=True)
        result |= {"fresh_final": again["accuracy"], "fresh_colour": again["colour"]}
    return result


def table(results: list[dict], steps: int) -> str:
    """The runs as a markdown table, and each method's means."""
    lines = ["| concept | seed | method | " + " | ".join(str(s) for s in results[0]["per_step"]) +
             " | first >= 90% | colour kept | train s |", "|---|---:|---|" + "---:|" * (len(results[0]["per_step"]) + 3)]
    for r in results:
        cells = " | ".join(f"{a:.0%}" for a in r["per_step"].values())
        lines.append(f"| {r['concept']} | {r['seed']} | {r['method']} | {cells} | {r['first_90'] or 'never'} | "
                     f"{r['colour']:.0%} | {r['train_seconds']} |")
    lines.append("")
    for method in dict.fromkeys(r["method"] for r in results):
        mine = [r for r in results if r["method"] == method]
        firsts = [r["first_90"] if r["first_90"] is not None else 2 * steps for r in mine]  # never: twice the run
        lines.append(f"{method}: mean first >= 90% {statistics.mean(firsts):.0f} steps (never counted as {2 * steps}), "
                     f"final {statistics.mean(r['final'] for r in mine):.1%} (worst {min(r['final'] for r in mine):.1%}), "
                     f"colour kept {statistics.mean(r['colour'] for r in mine):.1%} "
                     f"(worst {min(r['colour'] for r in mine):.1%})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy", help="the toy model: toy (bundled) or a folder")
    parser.add_argument("--concepts", default="star,cross,crescent")
    parser.add_argument("--seeds", default="0,1", help="training seeds")
    parser.add_argument("--methods", default="ti,lora,pivotal", help=f"of {', '.join(METHODS)}")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=50, help="a checkpoint every N steps")
    parser.add_argument("--samples", type=int, default=32, help="judged samples per checkpoint")
    parser.add_argument("--sample-seed", type=int, default=0, help="the judged samples' first seed")
    parser.add_argument("--fresh-seed", type=int, help="also judge the last checkpoint on samples from this seed")
    parser.add_argument("--fresh-methods", default="pivotal", help="the methods judged on fresh seeds too")
    parser.add_argument("--pivotal", default="{}", help="TrainConfig changes for pivotal runs (JSON): a trial")
    parser.add_argument("--lora", default="{}", help="TrainConfig changes for LoRA runs (JSON)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from oneword.offline import go_offline, quiet_libraries

    go_offline()
    quiet_libraries()
    from oneword.toy.concepts import CONCEPTS

    changes = {"pivotal": json.loads(args.pivotal), "lora": json.loads(args.lora), "ti": {}}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for concept in args.concepts.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                for method in args.methods.split(","):
                    folder = Path(tmp) / f"{concept}-{seed}-{method}"
                    results.append(run_one(args.model, method, CONCEPTS[concept], seed, folder, args, changes[method]))
                    print(json.dumps(results[-1]), flush=True)
    print()
    print(table(results, args.steps))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
