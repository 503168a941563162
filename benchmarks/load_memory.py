"""Peak memory and time of loading a full-size SD 1.5 single-file checkpoint, against two reference loaders.

Builds an SD 1.5-architecture model with random weights, saves it as one fp16 `.safetensors` (about 2 GB) in a
temporary folder, then loads it in a fresh process per loader and reports seconds and peak RSS (`ru_maxrss`)
above the process's peak after imports. After loading, one value of every 4 KiB page of every weight is read,
so memory-mapped weights become resident too ("resident s" is the time until then), and a float64 sum of all
weights must agree between loaders. Linux carries `ru_maxrss` across fork and exec, so this parent process
stays small: the checkpoint is written by a child too.

    nice python benchmarks/load_memory.py            # full size: several GB of RAM, a few minutes
    python benchmarks/load_memory.py --tiny          # the same steps on the tiny model (checks the script)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOADERS = {
    "oneword": "oneword.load_base(file): empty model, reads part by part, load_state_dict(assign=True)",
    "diffusers": "StableDiffusionPipeline.from_single_file(file, config=local folder, torch_dtype=fp16)",
    "naive": "safetensors load_file + diffusers conversion + load_state_dict into an allocated fp16 model",
}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _total(t) -> float:
    """Sum of a tensor in float64, a million values at a time (no full-size float64 copy to count as RSS)."""
    return sum(float(chunk.double().sum()) for chunk in t.reshape(-1).split(1 << 20))


def _child(loader: str, file: Path, config_dir: Path) -> dict:
    """Load `file` with one loader in this (fresh) process; the figures as a dict."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint)
    from safetensors.torch import load_file

    import oneword
    from oneword.models.build import build_model
    from oneword.models.detect import detect_kind, infer_config
    from oneword.models.single_file import load_single_file  # noqa: F401  (imported by every loader alike)

    baseline = _peak_mib()
    start = time.perf_counter()
    if loader == "oneword":
        model = oneword.load_base(file)
        modules = model.modules()
    elif loader == "diffusers":
        pipe = StableDiffusionPipeline.from_single_file(
            str(file), config=str(config_dir), local_files_only=True, torch_dtype=torch.float16,
            safety_checker=None, requires_safety_checker=False)
        modules = [pipe.unet, pipe.vae, pipe.text_encoder]
    else:
        state = load_file(file)
        shapes = {k: tuple(t.shape) for k, t in state.items()}
        kind = detect_kind(shapes)
        torch.set_default_dtype(torch.float16)  # allocate the model in the file's dtype
        model = build_model(kind, infer_config(kind, shapes), name=file.stem, empty=True)
        torch.set_default_dtype(torch.float32)
        for module in model.modules():
            module.to_empty(device="cpu")
        model.unet.load_state_dict(convert_ldm_unet_checkpoint(state, dict(model.unet.config)))
        model.vae.load_state_dict(convert_ldm_vae_checkpoint(state, dict(model.vae.config)))
        text = convert_ldm_clip_checkpoint({k: v for k, v in state.items() if not k.endswith("position_ids")})
        text_model = model.encoders[0].model
        text_model.load_state_dict({k.removeprefix("text_model."): v for k, v in text.items()})
        modules = model.modules()
        del state, text
    seconds = time.perf_counter() - start
    after_load = _peak_mib() - baseline
    tensors = [t for m in modules for t in m.state_dict().values() if t.is_floating_point()]
    for t in tensors:  # one value per 4 KiB page: memory-mapped weights are read from the file here
        t.reshape(-1)[:: 4096 // t.element_size()].sum()
    resident_s = time.perf_counter() - start
    checksum = sum(_total(t) for t in tensors)
    return {"loader": loader, "seconds": round(seconds, 2), "with_read_s": round(resident_s, 2),
            "after_load_mib": round(after_load), "peak_mib": round(_peak_mib() - baseline),
            "baseline_mib": round(baseline), "checksum": checksum}


def _write_checkpoint(folder: Path, tiny: bool) -> None:
    """Save a random SD 1.5-architecture model as fp16 safetensors, and its diffusers configs (no weights)."""
    import torch

    from oneword.models.build import build_model
    from oneword.models.export import save_single_file
    from oneword.models.kinds import kind_config
    from oneword.models.pipeline import make_pipeline
    from oneword.models.tiny import build_tiny

    torch.manual_seed(0)
    model = build_tiny("sd1") if tiny else build_model("sd1", kind_config("sd1"), name="sd15-random")
    model.to("cpu", dtype=torch.float16)
    file = folder / "sd15-random.safetensors"
    save_single_file(model, file)
    config_dir = folder / "config"
    pipe = make_pipeline(model)
    pipe.save_config(config_dir)  # model_index.json
    model.unet.save_config(config_dir / "unet")
    model.vae.save_config(config_dir / "vae")
    model.encoders[0].model.config.save_pretrained(config_dir / "text_encoder")
    model.encoders[0].tokenizer.save_pretrained(config_dir / "tokenizer")
    pipe.scheduler.save_config(config_dir / "scheduler")


def main() -> None:
    """Write the checkpoint, measure each loader in its own process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="use the tiny SD 1.x model (checks the script)")
    parser.add_argument("--child", nargs=3, metavar=("LOADER", "FILE", "CONFIG"), help=argparse.SUPPRESS)
    parser.add_argument("--write", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's `oneword`
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    if args.write:
        _write_checkpoint(Path(args.write), args.tiny)
        return
    with tempfile.TemporaryDirectory(prefix="oneword-bench-") as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--write", tmp, *(["--tiny"] if args.tiny else [])], check=True)
        file, config_dir = Path(tmp) / "sd15-random.safetensors", Path(tmp) / "config"
        size_mib = file.stat().st_size / 2**20
        print(f"checkpoint: {file.name}, {size_mib:.0f} MiB fp16, written in {time.perf_counter() - start:.0f} s")
        results = {}
        for loader in LOADERS:
            out = subprocess.run([sys.executable, __file__, "--child", loader, str(file), str(config_dir)],
                                 capture_output=True, text=True, check=True)
            results[loader] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"parent peak RSS (inherited by the children): {_peak_mib():.0f} MiB")
    print(f"{'loader':<10} {'load s':>7} {'resident s':>10} {'RSS after load':>15} {'peak RSS':>9} {'peak/file':>10}")
    for loader, r in results.items():
        print(f"{loader:<10} {r['seconds']:>7.1f} {r['with_read_s']:>10.1f} {r['after_load_mib']:>11} MiB "
              f"{r['peak_mib']:>5} MiB {r['peak_mib'] / size_mib:>9.2f}x   ({LOADERS[loader]})")
    ours = results["oneword"]["peak_mib"]
    for loader in ("diffusers", "naive"):
        print(f"oneword peak / {loader} peak: {ours / results[loader]['peak_mib']:.2f}")
    sums = {r["checksum"] for r in results.values()}
    print(f"weights agree between loaders: {len(sums) == 1} (float64 sum {sorted(sums)[0]:.6f})")


if __name__ == "__main__":
    main()
