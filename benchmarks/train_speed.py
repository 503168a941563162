"""Training speed and memory: oneword's trainer against the loop popular scripts run, on the same model and data.

The reference loop does what the diffusers textual-inversion example and A1111 do: the VAE encodes the batch's
pictures every step, the whole token-embedding table is the trainable tensor in AdamW (every row but the new
word's restored after each step), the text encoder runs in float32, the UNet uses the classic attention
(`AttnProcessor`: the attention matrix materialised) in the contiguous layout, and every step's loss is read back.
The UNet and VAE run in the same precision as oneword's (bf16 on GPUs that have it, fp16 on older ones, float32
on the CPU), which favours the reference.

Both run in this process on one model, in `--rounds` rounds; each round runs every variant one after the other
(the reference, oneword with its defaults, and with `--each-switch` oneword with each speed switch flipped), each
for `--warmup` untimed then `--steps` timed steps, so that the load of other work on the machine falls on all of
them alike. Reported per variant (median over the rounds, and the range): steps per second; peak accelerator
memory (CUDA: everything allocated, weights included) or the peak resident memory above the variant's start (CPU,
sampled every 5 ms); and the UNet's achieved TFLOP/s (its forward and backward FLOPs at this batch, counted once
with PyTorch's FLOP counter, times steps per second) against the device's bf16 peak where it is known. The last
line is `speedup vs reference: X.XXx` (the median of the rounds' ratios).

    python benchmarks/train_speed.py --arch toy --batch 1 --device cpu --each-switch
    python benchmarks/train_speed.py --arch sd15 --batch 8 --device cuda --each-switch
    python benchmarks/train_speed.py --arch sd15 --device cpu --steps 2 --warmup 1 --rounds 1   # a smoke check

With `--kind lora` both train a LoRA (rank 16, alpha 8, kohya's default layers, the text encoder too): oneword's
LoRA kind against kohya's loop (`lora_reference.py`).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

PEAK_BF16_TFLOPS = {"H100 SXM": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.0, "A100": 312.0}
"""Dense bf16 tensor-core peaks from the vendors' data sheets, by device name."""
RESOLUTION = {"toy": 64, "sd15": 512, "sdxl": 1024}


def make_model(arch: str):
    """The toy model, a tiny random model (`tiny-sd1`, `tiny-sdxl`: the smoke checks' models), or an SD 1.5 / SDXL
    architecture with random weights (seed 0)."""
    if arch == "toy":
        from oneword.toy.bundle import load_toy

        return load_toy("toy")[0]
    if arch.startswith("tiny-"):
        from oneword.models.tiny import TINY_NAMES, build_tiny

        return build_tiny(TINY_NAMES[arch], seed=0, name=arch)
    from oneword.models.build import build_model
    from oneword.models.kinds import kind_config

    kind = {"sd15": "sd1", "sdxl": "sdxl"}[arch]
    torch.manual_seed(0)
    return build_model(kind, kind_config(kind), name=f"{arch}-random")


def write_pictures(folder: Path, n: int, size: int) -> Path:
    """`n` seeded pictures with a caption each."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8")).save(folder / f"{i:05d}-pic.png")
        (folder / f"{i:05d}-pic.txt").write_text("a red ball on grass")
    return folder


class PeakMemory:
    """Peak memory during a block: CUDA's allocator peak, or the process's resident set sampled every 5 ms."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak_mib, self._stop = device, 0.0, threading.Event()

    @staticmethod
    def _rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    def _sample(self, start: float) -> None:
        while not self._stop.wait(0.005):
            self.peak_mib = max(self.peak_mib, self._rss_mib() - start)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, args=(self._rss_mib(),), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_mib = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()


SWITCHES = {
    "channels_last": False, "flash_attention": False, "fused_optimizer": False, "half_precision": False,
    "gradient_checkpointing": True, "compile": True,
}
"""Each speed switch of TrainConfig, and the value that flips it from oneword's default."""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def oneword_loop(model, data: Path, args, device: torch.device, log: Path, changes: dict) -> dict:
    """oneword's trainer (`setup` + `fit`, everything a user run does but saving): steps per second over the
    timed steps (timed from the end of the warmup's last optimizer step to the end of the last one)."""
    from oneword.train.config import TrainConfig
    from oneword.train.loop import fit, setup

    config = TrainConfig(name="bench", data=data, model=args.arch, batch_size=args.batch,
                         max_steps=args.warmup + args.steps, save_every=0, preview_every=0, validate_every=0,
                         csv_every=10_000, log_dir=log, embeddings_dir=log / "emb", seed=0,
                         **({"kind": "lora", "lora_dir": log / "lora"} if args.kind == "lora"
                            else {"init_text": "ball"}), **changes)
    marks: dict[int, float] = {}

    def mark(optimizer, *_) -> None:
        step = len(marks) + 1
        if step in (args.warmup, args.warmup + args.steps):
            synchronize(device)
        marks[step] = time.perf_counter()

    with PeakMemory(device) as memory:
        run = setup(config, model, device=device.type)
        run.optimizer.register_step_post_hook(mark)
        fit(run)
    first, last = args.warmup, args.warmup + args.steps
    return {"steps_per_second": args.steps / (marks[last] - marks[first]), "peak_mib": memory.peak_mib}


def plain_unet(model) -> None:
    """Undo what a oneword run set on the shared UNet (layout, attention, checkpointing, compilation)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet = model.unet
    unet.to(memory_format=torch.contiguous_format)
    unet.set_attn_processor(AttnProcessor2_0())
    unet.disable_gradient_checkpointing()
    unet._compiled_call_impl = None  # what nn.Module.compile() set


def _reference_condition(model, ids: torch.Tensor):
    """Each text encoder in float32 with gradients to its token table, read as the kind reads it."""
    contexts, pooled = [], None
    for encoder in model.encoders:
        out = encoder.model(ids, output_hidden_states=True)
        if encoder.spec.layer == "last":
            contexts.append(out.last_hidden_state)
        else:
            contexts.append(out.hidden_states[-2])
        if hasattr(out, "text_embeds"):
            pooled = out.text_embeds
    return type("Cond", (), {"context": torch.cat(contexts, dim=-1), "pooled": pooled})


def reference_loop(model, data: Path, args, device: torch.device) -> dict:
    """The popular scripts' loop (see the module docstring)."""
    from diffusers import DDPMScheduler
    from diffusers.models.attention_processor import AttnProcessor

    from oneword.train.dataset import read_dataset
    from oneword.train.speed import training_dtype
    from oneword.train.step import unet_predict

    size = int(model.vae.config.sample_size)  # the native size, what oneword trains at
    dtype = training_dtype(device)
    pixels = torch.stack([im.pixels for im in read_dataset(data, (size, size)).images])  # (N, 3, H, W)
    model.unet.to(device, dtype).requires_grad_(False)
    model.vae.to(device, dtype).requires_grad_(False)  # oneword's runs leave it on the CPU
    processors = model.unet.attn_processors
    model.unet.set_attn_processor(AttnProcessor())
    tables = []
    for encoder in model.encoders:
        encoder.model.to(device, torch.float32).requires_grad_(False)
        table = encoder.model.get_input_embeddings().weight
        table.requires_grad_(True)
        tables.append(table)
    tokenizer = model.encoders[0].tokenizer
    word = tokenizer("*", add_special_tokens=False)["input_ids"][0]
    ids = tokenizer(["a photo of *, a red ball"] * args.batch, padding="max_length", max_length=77,
                    truncation=True, return_tensors="pt").input_ids.to(device)
    originals = [t.detach().clone() for t in tables]
    keep = torch.ones(tables[0].shape[0], dtype=torch.bool, device=device)
    keep[word] = False
    optimizer = torch.optim.AdamW(tables, lr=5e-3, weight_decay=1e-2)  # the diffusers example's defaults
    scheduler = DDPMScheduler.from_config(model.scheduler_config)
    scaling = model.vae.config.scaling_factor
    generator = torch.Generator().manual_seed(0)
    times = []
    try:
        with PeakMemory(device) as memory:
            for step in range(args.warmup + args.steps):
                start = time.perf_counter()
                batch = pixels[[(step * args.batch + i) % len(pixels) for i in range(args.batch)]]
                with torch.no_grad():
                    latents = model.vae.encode(batch.to(device, dtype)).latent_dist.sample() * scaling
                noise = torch.randn(latents.shape, generator=generator).to(device, dtype)
                t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,), generator=generator)
                noisy = scheduler.add_noise(latents, noise, t.to(device))
                pred = unet_predict(model, noisy, t.to(device), _reference_condition(model, ids))
                loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                with torch.no_grad():
                    for table, original in zip(tables, originals):
                        table[keep] = original[keep]
                loss.item()  # the progress bar shows every step's loss: a host-device sync
                if step >= args.warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.unet.set_attn_processor(processors)
        for table in tables:
            table.requires_grad_(False)
            table.grad = None
    return {"steps_per_second": 1 / statistics.fmean(times), "peak_mib": memory.peak_mib}


def unet_flops(model, batch: int, size: int, device: torch.device) -> float:
    """FLOPs of one UNet forward and backward at `batch` latents of `size` pixels (PyTorch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    from oneword.train.step import unet_predict

    unet = model.unet
    factor = 2 ** (len(model.vae.config.block_out_channels) - 1)
    latents = torch.randn(batch, unet.config.in_channels, size // factor, size // factor, device=device,
                          dtype=unet.dtype, requires_grad=True)
    width = sum(e.model.config.hidden_size for e in model.encoders)
    pooled_width = model.encoders[-1].model.config.projection_dim  # SDXL: 1280

    class Cond:
        context = torch.randn(batch, 77, width, device=device, dtype=unet.dtype)
        pooled = torch.randn(batch, pooled_width, device=device, dtype=unet.dtype) if model.is_sdxl else None

    t = torch.full((batch,), 500, device=device)
    with FlopCounterMode(display=False) as counter:
        unet_predict(model, latents, t, Cond).float().pow(2).mean().backward()
    return float(counter.get_total_flops())


def device_peak(device: torch.device) -> tuple[str, float | None]:
    """The device's name, and its dense bf16 peak in TFLOP/s where PEAK_BF16_TFLOPS knows it."""
    if device.type != "cuda":
        return f"CPU, {torch.get_num_threads()} threads", None
    name = torch.cuda.get_device_name()
    return name, next((v for k, v in PEAK_BF16_TFLOPS.items() if all(w in name for w in k.split())), None)


def run_variant(model, data: Path, args, device: torch.device, log: Path, changes: dict | None) -> dict:
    """One variant on a model freed of the previous one: the reference loop (`changes` None; kohya's with
    `args.kind` lora) or oneword's trainer with `changes` to its switches; its steps per second and peak memory."""
    plain_unet(model)
    if device.type == "cuda":
        model.to("cpu")  # each variant's peak counts only what it puts on the GPU itself
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if changes is None and args.kind == "lora":
        from lora_reference import reference_lora_loop  # beside this script

        return reference_lora_loop(model, data, args, device, PeakMemory, _reference_condition)
    if changes is None:
        return reference_loop(model, data, args, device)
    return oneword_loop(model, data, args, device, log, changes)


def measure_flops(model, batch: int, device: torch.device) -> float:
    """The plain UNet's FLOPs per forward and backward at `batch`, at the model's native size and precision."""
    from oneword.train.speed import training_dtype

    plain_unet(model)
    model.unet.to(device, training_dtype(device))
    return unet_flops(model, batch, int(model.vae.config.sample_size), device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(RESOLUTION), default="toy")
    parser.add_argument("--kind", choices=("embedding", "lora"), default="embedding", help="what both loops train")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per variant and round")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant, one after the other")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default, every core)")
    parser.add_argument("--off", action="append", default=[], choices=sorted(SWITCHES), metavar="SWITCH",
                        help=f"flip a switch in oneword's main run: {', '.join(SWITCHES)} (repeatable)")
    parser.add_argument("--each-switch", action="store_true",
                        help="also run oneword with each switch flipped (compile only with --compile)")
    parser.add_argument("--compile", action="store_true", help="with --each-switch: include torch.compile")
    parser.add_argument("--solo", choices=("reference", "oneword"),
                        help="run only this variant (the CPU's peak RAM is only clean for a process's first variant)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from oneword.offline import go_offline, quiet_libraries

    go_offline()
    quiet_libraries()
    device = torch.device(args.device)
    model = make_model(args.arch)
    size = RESOLUTION[args.arch]
    name, peak = device_peak(device)
    print(f"{args.kind}: {args.arch} at {size} px, batch {args.batch}, on {name} (torch {torch.__version__}); "
          f"{args.rounds} rounds of {args.warmup} + {args.steps} steps", flush=True)
    main_run = {key: SWITCHES[key] for key in args.off}
    variants = {"reference": None, "oneword": main_run}
    if args.each_switch:
        for key, flipped in SWITCHES.items():
            gpu_only = key == "half_precision" and device.type != "cuda"
            if key not in main_run and not gpu_only and (key != "compile" or args.compile):
                variants[f"oneword, {key} {'on' if flipped else 'off'}"] = {**main_run, key: flipped}
    if args.solo:
        variants = {args.solo: variants[args.solo]}
    results: dict[str, list[dict]] = {label: [] for label in variants}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_pictures(Path(tmp) / "data", max(8, args.batch), size)
        for r in range(args.rounds):
            for k, (label, changes) in enumerate(variants.items()):
                result = run_variant(model, data, args, device, Path(tmp) / f"log{r}-{k}", changes)
                results[label].append(result)
                print(f"round {r + 1}: {label}: {result['steps_per_second']:.3f} steps/s, "
                      f"peak {result['peak_mib']:.0f} MiB", flush=True)
    flops = measure_flops(model, args.batch, device)
    memory = "peak accelerator memory" if device.type == "cuda" else "peak RAM above the start"
    for label, runs in results.items():
        rates = [r["steps_per_second"] for r in runs]
        rate = statistics.median(rates)
        tflops = flops * rate / 1e12
        share = f" ({tflops / peak:.1%} of the bf16 peak {peak:g})" if peak else ""
        print(f"{label}: {rate:.3f} steps/s ({min(rates):.3f}-{max(rates):.3f}), "
              f"{memory} {max(r['peak_mib'] for r in runs):.0f} MiB, UNet {tflops:.4g} TFLOP/s{share}", flush=True)
    print(f"UNet work per step: {flops / 1e9:.2f} GFLOP (forward and backward)")
    if args.solo:
        return 0
    ratios = [o["steps_per_second"] / ref["steps_per_second"]
              for o, ref in zip(results["oneword"], results["reference"])]
    print("speedup per round: " + ", ".join(f"{x:.2f}x" for x in ratios))
    print(f"speedup vs reference: {statistics.median(ratios):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
