"""The reference loop of `train_speed.py --kind lora`: what kohya's `train_network.py` does per step with its
`networks/lora.py` at its defaults (no `--cache_latents`, no `--xformers`/`--sdpa`).

kohya replaces each target layer's `forward` with `org_forward(x) + lora_up(lora_down(x)) * scale`, the LoRA's
down and up as float32 `nn.Linear`/`nn.Conv2d` modules (Kaiming-uniform down, zero up); every step the VAE encodes
the batch, the text encoder runs with gradients to its LoRA layers (float32), the UNet with the classic attention
in the contiguous layout, AdamW (torch's per-tensor implementation) steps two param groups (UNet 1e-4, text
encoder 5e-5, weight decay 0.01), and the step's loss is read back for the progress bar. The UNet and VAE run in
oneword's precision (bf16 on GPUs), which favours the reference, as in the embedding's reference.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

RANK, ALPHA = 16, 8.0
"""The rank and alpha both loops train (oneword's LoRA defaults, a common kohya setting)."""


def _kohya_modules(model, device: torch.device) -> tuple[list, list, list]:
    """A down and up module per kohya target layer (attn-mlp, text encoder too), hooked in by replacing the
    layer's forward; returns the UNet's and the text encoder's parameters and the replaced layers."""
    from oneword.lora.names import places

    unet_params, te_params, replaced = [], [], []
    generator = torch.Generator().manual_seed(0)
    for place in places(model, "attn-mlp", text_encoder=True).values():
        module = place.module
        if isinstance(module, torch.nn.Conv2d):
            down = torch.nn.Conv2d(module.in_channels, RANK, module.kernel_size, module.stride, module.padding,
                                   bias=False)
            up = torch.nn.Conv2d(RANK, module.out_channels, 1, bias=False)
        else:
            down = torch.nn.Linear(module.in_features, RANK, bias=False)
            up = torch.nn.Linear(RANK, module.out_features, bias=False)
        torch.nn.init.kaiming_uniform_(down.weight, a=math.sqrt(5), generator=generator)
        torch.nn.init.zeros_(up.weight)
        down.to(device), up.to(device)
        (unet_params if place.part == "unet" else te_params).extend([down.weight, up.weight])
        original = module.forward

        def forward(x, *args, original=original, down=down, up=up, **kwargs):
            lora = up(down(x.to(down.weight.dtype))).to(x.dtype)  # what autocast does to the float32 modules
            return original(x, *args, **kwargs) + lora * (ALPHA / RANK)

        module.forward = forward
        replaced.append(module)
    return unet_params, te_params, replaced


def reference_lora_loop(model, data: Path, args, device: torch.device, peak_memory: Callable,
                        condition: Callable) -> dict:
    """kohya's loop (see the module docstring); `peak_memory` and `condition` are train_speed.py's."""
    from diffusers import DDPMScheduler
    from diffusers.models.attention_processor import AttnProcessor

    from oneword.train.dataset import read_dataset
    from oneword.train.speed import training_dtype
    from oneword.train.step import unet_predict

    size = {"toy": 64, "sd15": 512, "sdxl": 1024}[args.arch]
    dtype = training_dtype(device)
    pixels = torch.stack([im.pixels for im in read_dataset(data, (size, size)).images])  # (N, 3, H, W)
    model.unet.to(device, dtype).requires_grad_(False)
    model.vae.to(device, dtype).requires_grad_(False)
    processors = model.unet.attn_processors
    model.unet.set_attn_processor(AttnProcessor())
    for encoder in model.encoders:
        encoder.model.to(device, torch.float32).requires_grad_(False)
    unet_params, te_params, replaced = _kohya_modules(model, device)
    ids = model.encoders[0].tokenizer(["a photo of zqx, a red ball"] * args.batch, padding="max_length",
                                      max_length=77, truncation=True, return_tensors="pt").input_ids.to(device)
    optimizer = torch.optim.AdamW([{"params": unet_params, "lr": 1e-4}, {"params": te_params, "lr": 5e-5}],
                                  weight_decay=1e-2)
    scheduler = DDPMScheduler.from_config(model.scheduler_config)
    scaling = model.vae.config.scaling_factor
    generator = torch.Generator().manual_seed(0)
    times = []
    try:
        with peak_memory(device) as memory:
            for step in range(args.warmup + args.steps):
                start = time.perf_counter()
                batch = pixels[[(step * args.batch + i) % len(pixels) for i in range(args.batch)]]
                with torch.no_grad():
                    latents = model.vae.encode(batch.to(device, dtype)).latent_dist.sample() * scaling
                noise = torch.randn(latents.shape, generator=generator).to(device, dtype)
                t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,), generator=generator)
                noisy = scheduler.add_noise(latents, noise, t.to(device))
                pred = unet_predict(model, noisy, t.to(device), condition(model, ids))
                loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                loss.item()  # kohya's progress bar shows every step's loss: a host-device sync
                if step >= args.warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.unet.set_attn_processor(processors)
        for module in replaced:
            del module.forward  # the class's forward again
    return {"steps_per_second": 1 / statistics.fmean(times), "peak_mib": memory.peak_mib}
