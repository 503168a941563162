"""Knowing when to stop, on the toy world: does `--stop auto` stop early, and is the chosen checkpoint good?

For every toy concept and several seeds, an embedding is trained with `oneword train`'s defaults to a generous
`--max-steps` (the reference: what a user without auto-stop runs). The fixed-batch validation loss is measured
every `--every` steps (the default `--validate-every`), where a `--stop auto` run also keeps a checkpoint; the
judge reads samples of the concept prompt at each of those and, to see the learning phase, at a checkpoint
every `--dense` steps up to step `--dense-until`. Then the plateau rule (oneword.train.plateau, the code
`--stop auto` runs) is replayed over each signal's measurements: where it would have stopped and which checkpoint
it would have chosen. The rule only looks at past measurements, so the replay stops exactly where a
`--stop auto` run stops.

Reported per run and overall: the step where judged accuracy first reaches 90%; the auto-stop step; the judged
accuracy of the chosen checkpoint against the best checkpoint of the whole run, both judged again on fresh seeds
(`--final-samples`, so the best's figure is not inflated by having been picked on the same samples); the steps and
seconds saved against running to max steps; and the rank correlation (Spearman) of judged accuracy with the
validation loss and the raw training loss (and the feature score with `--feature-samples N`), over the learning
phase and over the whole run.

    python benchmarks/stopping.py                                      # the recorded figures
    python benchmarks/stopping.py --concepts star --seeds 0 --max-steps 600   # quick look
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path


def ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (0 when either series is constant)."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else 0.0


def correlations(records, signals: dict[str, dict[int, float]]) -> dict[str, float]:
    """Spearman of judged accuracy with each signal (step -> value, higher is better) over the judged records."""
    judged = [r for r in records if "judge_accuracy" in r.scores]
    accuracy = [r.scores["judge_accuracy"] for r in judged]
    return {name: spearman(accuracy, [values[r.step] for r in judged]) for name, values in signals.items()}


class Timed:
    """A scorer wrapper that scores only the steps `due(step)` says and adds up the seconds spent in it (judging is
    the benchmark's cost, not the user's)."""

    def __init__(self, scorer, due) -> None:
        self.scorer, self.key, self.due, self.seconds = scorer, scorer.key, due, 0.0

    def score(self, context):
        if not self.due(context.snapshot.step):
            return {}
        start = time.perf_counter()
        try:
            return self.scorer.score(context)
        finally:
            self.seconds += time.perf_counter() - start


def replay(signal: str, measurements: list[tuple[int, float]], records, rule: tuple[int, float, float]):
    """Where `--stop auto` on `signal` with `rule` (patience, min_delta, smoothing) stops (None: it would not have)
    and the checkpoint it would choose."""
    from oneword.train.best import best_record, lower_is_better
    from oneword.train.plateau import Plateau

    patience, min_delta, smoothing = rule
    rule = Plateau(patience=patience, min_delta=min_delta, smoothing=smoothing,
                   higher_is_better=not lower_is_better(signal))
    stop = next((step for step, value in measurements if rule.add(value)), None)
    end = stop if stop is not None else measurements[-1][0]
    return stop, best_record([r for r in records if r.step <= end], signal)


def default_rule() -> tuple[int, float, float]:
    """--stop auto's own patience, min_delta and smoothing (of the validation loss)."""
    from oneword.train.config import TrainConfig
    from oneword.train.plateau import smoothing_for

    return TrainConfig.stop_patience, TrainConfig.stop_min_delta, smoothing_for(True)


def parse_rule(text: str) -> tuple[int, float, float]:
    patience, min_delta, smoothing = text.split(",")
    return int(patience), float(min_delta), float(smoothing)


def rule_label(rule: tuple[int, float, float]) -> str:
    return "patience {} min_delta {:g} smoothing {:g}".format(*rule)


def one_run(model, judge, concept, seed: int, folder: Path, args) -> dict:
    from oneword.embeddings.formats import load_embedding_file
    from oneword.score.features import FeatureScorer
    from oneword.toy.concepts import write_concept_examples
    from oneword.toy.scorer import JudgeScorer
    from oneword.toy.report import ReportConfig, concept_rate, embedding_prompt
    from oneword.train import events
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train

    name = f"{concept.name}-s{seed}"
    data = write_concept_examples(concept, folder / "data", seed=seed)[0].parent
    every = args.every

    def judged(step: int) -> bool:
        return step % every == 0 or step <= args.dense_until

    scorers = [Timed(JudgeScorer(concept, judge, samples=args.samples, seed=1000, editability=False), judged)]
    if args.feature_samples:
        scorers.append(Timed(FeatureScorer(samples=args.feature_samples, seed=seed), lambda step: step % every == 0))
    clock: dict[int, float] = {}
    start = time.perf_counter()

    def listen(event) -> None:
        if isinstance(event, events.Checked):
            clock[event.step] = time.perf_counter() - start - sum(s.seconds for s in scorers)

    template = "subject_filewords" if concept.kind == "object" else "style_filewords"
    config = TrainConfig(name=name, data=data, model=str(model.source), init_text=concept.init_text,
                         template=template, max_steps=args.max_steps, save_every=args.dense, validate_every=every,
                         csv_every=args.dense, stop_signal="val_loss", preview_every=0,
                         log_dir=folder / "log", embeddings_dir=folder / "embeddings", seed=seed)
    finished = train(config, model, listen, scorers=scorers)
    records = finished.records
    csv = [row.split(",") for row in (finished.log_folder / "textual_inversion_loss.csv").read_text().splitlines()[1:]]
    train_rows = {int(r[0]): float(r[3]) for r in csv}  # the CSV's mean of the --dense steps since the last row
    per = every // args.dense
    train_50 = {step: statistics.fmean(train_rows[step - k * args.dense] for k in range(per))
                for step in train_rows if step >= every}
    # What a default `--stop auto` run has: a validation loss and a checkpoint every `every` steps.
    default_records = [r for r in records if r.step % every == 0]
    val = [(r.step, r.val_loss) for r in default_records]

    first90 = next((r.step for r in records if r.scores.get("judge_accuracy", 0) >= 0.9), None)
    whole_best = max((r for r in records if "judge_accuracy" in r.scores),
                     key=lambda r: (r.scores["judge_accuracy"], -r.step))
    signals = {"val_loss": {r.step: -r.val_loss for r in records},
               "train_loss": {s: -v for s, v in train_rows.items()},
               f"train_loss_{every}": {s: -v for s, v in train_50.items()}}
    if args.feature_samples:
        signals["features"] = {r.step: r.scores.get("features", float("nan")) for r in records}
    learning = [r for r in records if r.step <= args.dense_until]
    late = [r for r in default_records if r.step >= every]
    result = {
        "concept": concept.name, "seed": seed, "first_90": first90, "max_steps": args.max_steps,
        "accuracy": {r.step: r.scores["judge_accuracy"] for r in records if "judge_accuracy" in r.scores},
        "val_loss": {r.step: r.val_loss for r in records},
        "train_loss": train_rows,
        "train_seconds": round(clock[records[-1].step], 1),
        "judge_seconds": round(scorers[0].seconds, 1),
        "spearman_learning": correlations(learning, {k: v for k, v in signals.items() if k != f"train_loss_{every}"}),
        "spearman_whole_run": correlations(late, signals),
    }
    if args.feature_samples:
        result["features"] = {r.step: r.scores["features"] for r in records if "features" in r.scores}
        del result["spearman_learning"]["features"]

    rc = ReportConfig(samples=args.final_samples, seed=5000)
    prompt = embedding_prompt(concept.kind, name)

    def fresh(step: int) -> float:
        embedding = load_embedding_file(finished.log_folder / "embeddings" / f"{name}-{step}.pt")
        embedding.name = name
        return concept_rate(model, judge, concept, prompt, rc, rc.seed, {name: embedding})[0]

    result["whole_run_best"] = {"step": whole_best.step, "accuracy": fresh(whole_best.step)}
    result["signals"] = {}
    series = {"val_loss": val}
    if args.feature_samples:
        series["features"] = [(r.step, r.scores["features"]) for r in default_records]
    judged_fresh = {whole_best.step: result["whole_run_best"]["accuracy"]}
    for (signal, measurements), rule in itertools.product(series.items(), args.rule):
        stop, chosen = replay(signal, measurements, default_records, rule)
        stop_step = stop if stop is not None else args.max_steps
        if chosen.step not in judged_fresh:
            judged_fresh[chosen.step] = fresh(chosen.step)
        label = signal if rule == args.rule[0] else f"{signal} {rule_label(rule)}"
        result["signals"][label] = {
            "stop": stop, "chosen": chosen.step, "chosen_accuracy": judged_fresh[chosen.step],
            "steps_ratio": args.max_steps / stop_step,
            "seconds_ratio": clock[records[-1].step] / clock[stop_step],
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--concepts", default="", help="comma-separated (default: all four)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=50,
                        help="validation (and --stop auto checkpoint) interval: the default --validate-every")
    parser.add_argument("--dense", type=int, default=10, help="checkpoint interval of the learning phase")
    parser.add_argument("--dense-until", type=int, default=300, help="end of the learning phase (judged densely)")
    parser.add_argument("--samples", type=int, default=32, help="judged samples per checkpoint")
    parser.add_argument("--final-samples", type=int, default=128, help="fresh samples judging chosen vs best")
    parser.add_argument("--feature-samples", type=int, default=0, help="score features too (0: not)")
    parser.add_argument("--rule", type=parse_rule, action="append",
                        help="PATIENCE,MIN_DELTA,SMOOTHING of the plateau rule to replay; repeat to compare rules on "
                             "the same runs (default: --stop auto's own; the first is reported as plain `val_loss`)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--summarize", type=Path, nargs="+",
                        help="print the tables of runs saved with --json (several files: runs made in parallel)")
    args = parser.parse_args()
    args.rule = args.rule or [default_rule()]

    if args.summarize:
        results = [r for path in args.summarize for r in json.loads(path.read_text())]
    else:
        results = run_all(args)
    print("\n| concept | seed | first >= 90% | signal | stopped at | chosen | chosen acc. | whole-run best "
          "| steps saved | seconds saved |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for signal, v in r["signals"].items():
            best = r["whole_run_best"]
            print(f"| {r['concept']} | {r['seed']} | {r['first_90']} | {signal} | {v['stop']} | {v['chosen']} | "
                  f"{v['chosen_accuracy']:.1%} | {best['accuracy']:.1%} (step {best['step']}) | "
                  f"{v['steps_ratio']:.1f}x | {v['seconds_ratio']:.1f}x |")
    for signal in results[0]["signals"]:
        gaps = [r["whole_run_best"]["accuracy"] - r["signals"][signal]["chosen_accuracy"] for r in results]
        steps = [r["signals"][signal]["steps_ratio"] for r in results]
        seconds = [r["signals"][signal]["seconds_ratio"] for r in results]
        print(f"\n{signal}: chosen vs whole-run best: mean gap {statistics.fmean(gaps):.1%}, worst {max(gaps):.1%} "
              f"(target <= 2 points); steps saved min {min(steps):.1f}x, mean {statistics.fmean(steps):.1f}x; "
              f"seconds saved min {min(seconds):.1f}x (target >= 5x)")
    for span in ("spearman_learning", "spearman_whole_run"):
        for signal in results[0][span]:
            values = [r[span][signal] for r in results]
            print(f"{span}(judged accuracy, {signal}): mean over runs {statistics.fmean(values):+.2f}, "
                  f"min {min(values):+.2f}, max {max(values):+.2f}")
    return 0


def run_all(args) -> list[dict]:
    """Every concept and seed of `args`, one after the other (each run's line printed as it ends)."""
    from oneword.offline import go_offline, quiet_libraries

    go_offline()
    quiet_libraries()
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import CONCEPTS

    names = [n for n in args.concepts.split(",") if n] or list(CONCEPTS)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for seed in seeds:
                model, judge = load_toy(args.model)
                r = one_run(model, judge, CONCEPTS[name], seed, Path(tmp) / f"{name}-{seed}", args)
                results.append(r)
                s = r["signals"]
                print(f"{name} seed {seed}: first 90% at {r['first_90']}; whole-run best step "
                      f"{r['whole_run_best']['step']} ({r['whole_run_best']['accuracy']:.1%}); "
                      + "; ".join(f"{k}: stop {v['stop']}, chosen {v['chosen']} ({v['chosen_accuracy']:.1%}), "
                                  f"{v['steps_ratio']:.1f}x steps, {v['seconds_ratio']:.1f}x s" for k, v in s.items())
                      + f"; spearman learning {json.dumps({k: round(v, 2) for k, v in r['spearman_learning'].items()})}"
                      + f", whole run {json.dumps({k: round(v, 2) for k, v in r['spearman_whole_run'].items()})}",
                      flush=True)
                if args.json:  # after every run: a long benchmark keeps what it measured if it is stopped
                    args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    raise SystemExit(main())
