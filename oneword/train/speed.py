"""How the frozen model is made fast and lean for a training run: precision, memory layout, attention kernels,
gradient checkpointing, compilation, and the optimizer's kernel. Each is a TrainConfig switch (docs/training.md
says which ones only matter on GPUs; docs/benchmarks.md measures each on and off).
"""

from __future__ import annotations

import torch

from oneword.models.base import BaseModel
from oneword.train.config import TrainConfig
from oneword.train.groups import ParamGroup


def training_dtype(device: torch.device, half_precision: bool = True) -> torch.dtype:
    """Frozen weights: bf16 on GPUs that have it (no fp16 overflow), else fp16; float32 on the CPU or when
    `half_precision` is off."""
    if device.type != "cuda" or not half_precision:
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def prepare_unet(model: BaseModel, config: TrainConfig) -> None:
    """The UNet's layout, attention kernel, checkpointing and compilation as the run's switches ask."""
    unet = model.unet
    if config.channels_last:
        unet.to(memory_format=torch.channels_last)
    if not config.flash_attention:
        from diffusers.models.attention_processor import AttnProcessor

        unet.set_attn_processor(AttnProcessor())  # the attention matrix materialised, as before PyTorch 2
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    if config.compile:
        unet.compile()  # in place: the module's calls go through torch.compile from now on


def make_optimizer(groups: list[ParamGroup], rates: tuple[float, ...], config: TrainConfig,
                   device: torch.device) -> torch.optim.AdamW:
    """AdamW with one param group per parameter group, at `rates` and each group's weight decay; its fused kernel
    when `config.fused_optimizer` (CUDA and the CPU have one)."""
    fused = config.fused_optimizer and device.type in ("cuda", "cpu")
    optimizer = torch.optim.AdamW([{"params": g.params} for g in groups], lr=rates[0],
                                  weight_decay=groups[0].weight_decay, fused=fused or None)
    for param_group, group, rate in zip(optimizer.param_groups, groups, rates, strict=True):
        param_group["lr"], param_group["weight_decay"] = rate, group.weight_decay  # keys in torch's order
    return optimizer


def all_finite(loss: torch.Tensor, params: list[torch.Tensor]) -> bool:
    """Whether the loss and every gradient are finite, read back from the device in one transfer."""
    flags = [torch.isfinite(loss).reshape(1)]
    flags += [torch.isfinite(p.grad).all().reshape(1) for p in params if p.grad is not None]
    return bool(torch.cat(flags).all())
