"""Does training teach the concept? Judged accuracy of every toy object concept, default settings, 500 steps.

For each object concept of the toy world: write its example images, train an embedding with `oneword train`'s
defaults (only the step counts set: 500 steps, a checkpoint every 100), and let the judge read samples of
"a photo of NAME" at every checkpoint, and "a photo of a COLOUR NAME" (editability: is the colour obeyed?)
with the final one. The reference is the same model without the embedding: the best prompt a user could write
("a photo of an object"), whose rate is the baseline.

    python benchmarks/concept_accuracy.py                 # 64 samples per prompt (the acceptance figures)
    python benchmarks/concept_accuracy.py --samples 16    # quicker
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy", help="the toy model: toy (bundled) or a folder")
    parser.add_argument("--samples", type=int, default=64, help="judged samples per prompt")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--concepts", default="", help="comma-separated concept names (default: every object)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from oneword.offline import go_offline, quiet_libraries

    go_offline()
    quiet_libraries()
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import CONCEPTS
    from oneword.toy.evaluate import evaluate_concept

    names = [n for n in args.concepts.split(",") if n] or [c.name for c in CONCEPTS.values() if c.kind == "object"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            model, judge = load_toy(args.model)
            start = time.time()
            results[name] = evaluate_concept(model, judge, CONCEPTS[name], Path(tmp) / name, steps=args.steps,
                                             samples=args.samples)
            results[name]["seconds"] = round(time.time() - start, 1)
            print(json.dumps({name: results[name]}), flush=True)

    print()
    print(f"| concept | baseline | {' | '.join(f'step {s}' for s in results[names[0]]['per_step'])} | colour kept |")
    print("|---|---:|" + "---:|" * len(results[names[0]]["per_step"]) + "---:|")
    for name, r in results.items():
        steps = " | ".join(f"{v:.0%}" for v in r["per_step"].values())
        print(f"| {name} | {r['baseline']:.0%} | {steps} | {r['colour']:.0%} |")
    worst = min(r["final"] for r in results.values())
    worst_colour = min(r["colour"] for r in results.values())
    best_baseline = max(r["baseline"] for r in results.values())
    print(f"\nworst concept accuracy at step {args.steps}: {worst:.1%} (target >= 90%); worst colour kept: "
          f"{worst_colour:.1%} (target >= 85%); reference (no embedding) at most {best_baseline:.1%}")
    print(f"accuracy vs reference: {worst / max(best_baseline, 1e-9):.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if worst >= 0.9 and worst_colour >= 0.85 else 1


if __name__ == "__main__":
    sys.exit(main())
