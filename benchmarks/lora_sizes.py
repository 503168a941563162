"""Where does a toy LoRA's object fail? Textual Inversion and a LoRA side by side, judged per drawn size.

For each object concept and training seed, an embedding (`oneword train`'s defaults, init text "object") and a LoRA
(`--kind lora`, the kind's defaults for the model) are trained for `--steps` on the same 12 pictures. The last
checkpoint of each draws `--samples` samples of "a photo of NAME" from the same sampling seeds (guidance scale
`--cfg`), and the judge reads each sample's shape and size: the share judged as the concept among the samples judged
small and among those judged large. The reference, in the same process: the base model alone on "a photo of a
small object" and "a photo of a large object".

    OMP_NUM_THREADS=1 python benchmarks/lora_sizes.py --concepts cross --seeds 0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lora_quality import OBJECTS, checkpoint_files, lora_applied, train_lora


def per_size(judge, images: list, shape: str) -> dict[str, list[int]]:
    """Judged size -> [samples judged as `shape`, samples] over `images`."""
    from oneword.toy.judge import to_tensor

    verdicts = judge.predict(to_tensor(images))
    hits, counts = Counter(), Counter()
    for drawn, size in zip(verdicts["shape"], verdicts["size"]):
        hits[size] += drawn == shape
        counts[size] += 1
    return {size: [hits[size], counts[size]] for size in sorted(counts)}


def run(concept, seed: int, folder: Path, args) -> dict:
    """One concept and seed: the embedding's and the LoRA's last checkpoints, judged per size."""
    from oneword.embeddings.formats import load_embedding_file
    from oneword.lora.read import read_lora
    from oneword.models.device import vae_beside_unet
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import write_concept_examples
    from oneword.toy.report import ReportConfig, draw
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train

    rc = ReportConfig(samples=args.samples, seed=args.sample_seed, cfg=args.cfg)
    word = f"{concept.name}-x"
    data = write_concept_examples(concept, folder / "data", seed=seed)[0].parent
    config = TrainConfig(name=word, data=data, model=args.model, init_text=concept.init_text, max_steps=args.steps,
                         save_every=args.steps, preview_every=0, log_dir=folder / "log",
                         embeddings_dir=folder / "embeddings", seed=seed)
    embedding = load_embedding_file(train(config, load_toy(args.model)[0]).embedding_path)
    embedding.name = word
    finished, name, _ = train_lora(concept, seed, folder / "lora", args, args.steps, args.steps)
    model, judge = load_toy(args.model)
    with vae_beside_unet(model):
        ti = per_size(judge, draw(model, f"a photo of {word}", rc.samples, rc, rc.seed, {word: embedding}),
                      concept.shape)
        with lora_applied(model, read_lora(checkpoint_files(finished)[args.steps])):
            lora = per_size(judge, draw(model, f"a photo of {name}", rc.samples, rc, rc.seed), concept.shape)
    return {"concept": concept.name, "seed": seed, "ti": ti, "lora": lora}


def cell(counts: dict[str, list[int]], size: str) -> str:
    hits, total = counts.get(size, [0, 0])
    return f"{hits}/{total} ({hits / total:.0%})" if total else "0/0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy", help="the toy model: toy (bundled) or a folder")
    parser.add_argument("--concepts", default=",".join(OBJECTS))
    parser.add_argument("--seeds", default="0,1", help="training seeds")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=64, help="judged samples per prompt")
    parser.add_argument("--sample-seed", type=int, default=13000, help="first sampling seed")
    parser.add_argument("--cfg", type=float, default=5.0, help="guidance scale of the judged samples (DDIM, 20 steps)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    args.set = []  # lora_quality.train_lora's trial settings: none, the kind's defaults

    from oneword.models.device import vae_beside_unet
    from oneword.offline import go_offline, quiet_libraries
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import CONCEPTS
    from oneword.toy.judge import to_tensor
    from oneword.toy.report import ReportConfig, draw

    go_offline()
    quiet_libraries()
    model, judge = load_toy(args.model)
    rc = ReportConfig(samples=args.samples, seed=args.sample_seed, cfg=args.cfg)
    base = {}
    with vae_beside_unet(model):
        for size in ("small", "large"):
            verdicts = judge.predict(to_tensor(draw(model, f"a photo of a {size} object", rc.samples, rc, rc.seed)))
            base[size] = {"drawn that size": sum(v == size for v in verdicts["size"]) / rc.samples,
                          "shapes": dict(Counter(verdicts["shape"]))}
    print(json.dumps({"base": base}), flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.concepts.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                r = run(CONCEPTS[name], seed, Path(tmp) / f"{name}-{seed}", args)
                results.append(r)
                print(json.dumps(r), flush=True)
    print("\n| concept | seed | TI: small | TI: large | LoRA: small | LoRA: large |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['concept']} | {r['seed']} | {cell(r['ti'], 'small')} | {cell(r['ti'], 'large')} | "
              f"{cell(r['lora'], 'small')} | {cell(r['lora'], 'large')} |")
    for method in ("ti", "lora"):
        totals = {size: [sum(r[method].get(size, [0, 0])[i] for r in results) for i in (0, 1)]
                  for size in ("small", "large")}
        print(f"{method}: " + ", ".join(f"{size} {cell(totals, size)}" for size in totals))
    if args.json:
        args.json.write_text(json.dumps({"base": base, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
