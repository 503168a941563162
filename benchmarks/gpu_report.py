"""The GPU suite's markdown: one table of every part's loops beside each other, the targets, the precision check."""

from __future__ import annotations


def _number(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _speed_rows(part: dict) -> list[str]:
    rows = []
    variants = part.get("variants", {})
    model = f"{part['arch']}, {part['size']} px" if "size" in part else "-"
    for label in ("reference", "oneword"):
        figures = variants.get(label)
        if figures is None:
            rows.append(f"| {part['title']} | {model} | {label} | - | - | - | - | - | {part['status']} |")
            continue
        speedup = _number(part.get("speedup"), ".2f", "x") if label == "oneword" else ""
        rows.append(f"| {part['title']} | {model} | {label} | {figures['steps_per_second']:.3f} | "
                    f"{figures['peak_mib']:.0f} | "
                    f"{_number(figures.get('unet_tflops'), '.4g')} | {_number(figures.get('peak_share'), '.1%')} | "
                    f"{speedup} | {part['status']} |")
    return rows


def _precision_line(part: dict) -> str:
    if "passed" not in part:
        return f"- {part['title']}: {part['status']}" + (f" ({part['error']})" if "error" in part else "")
    verdict = "passed" if part["passed"] else "FAILED"
    return (f"- {part['title']} ({part['steps']} steps, {part['trained_numbers']} trained numbers): {verdict}; "
            f"finite {part['finite']}; largest loss difference {part['loss_difference']:.2%} of the float32 run's "
            f"mean loss (tolerance {part['loss_tolerance']:.0%}); update difference {part['update_difference']:.3f} of the "
            f"float32 update's norm (tolerance {part['update_tolerance']:g}), cosine {part['update_cosine']:.4f}")


def _target_rows(part: dict) -> list[str]:
    rows = []
    for target in part.get("targets", []):
        met = {True: "yes", False: "**no**", None: "not judged"}[target["met"]]
        value, goal = target["value"], target["target"]
        if target["what"].startswith("peak memory") and value is not None:
            value = f"{value * 2**20 / 1e9:.2f}"
        elif target["what"].startswith("share") and value is not None:
            value, goal = f"{value:.1%}", f"{goal:.0%}"
        elif target["what"].startswith("speedup") and value is not None:
            value = f"{value:.2f}x"
        elif isinstance(goal, bool):
            value, goal = {True: "yes", False: "no", None: None}[value], "yes"
        rows.append(f"| {part['title']} | {target['what']} | {goal} | {'-' if value is None else value} | {met} |")
    return rows


def markdown(report: dict) -> str:
    """The report as markdown: the run's header, the loops' figures, the targets, the precision checks."""
    kind = "CPU smoke check (tiny models, a couple of steps: figures that only show the code runs)" if report["smoke"] \
        else "GPU measurement"
    devices = sorted({p["device"] for p in report["parts"] if "device" in p})
    lines = [
        f"# GPU suite: {kind}", "",
        (f"{report['date']}, {', '.join(devices) or report['device']}; Python {report['python']}, torch "
         f"{report['torch']}, diffusers {report['diffusers']}, transformers {report['transformers']}; "
         f"{report.get('wall_s', 0):.0f} s of a {report['budget_s']:.0f} s budget."), "",
        "| part | model | loop | steps/s | peak memory (MiB) | UNet TFLOP/s | of bf16 peak | vs reference | status |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for part in (p for p in report["parts"] if not p["name"].startswith("precision")):
        lines += _speed_rows(part)
    lines += ["", "| part | target | goal | measured | met |", "|---|---|---:|---:|---|"]
    for part in report["parts"]:
        lines += _target_rows(part)
    lines += ["", "Precision (bf16 frozen weights against float32, same seed and data):", ""]
    lines += [_precision_line(p) for p in report["parts"] if p["name"].startswith("precision")]
    failed = [f"- {p['name']}: {p['status']}: {p['error']}" for p in report["parts"] if "error" in p]
    if failed:
        lines += ["", "Parts that did not finish:", "", *failed]
    return "\n".join(lines) + "\n"
