"""The diffusion maths shared by training, scoring and the toy model's recipe: the DDPM noise schedule, forward
noising, the v-prediction target, and the UNet call (Ho et al. 2020; Salimans & Ho 2022 for v).

The formulas are diffusers' `DDPMScheduler.add_noise` and `get_velocity`, on a schedule already looked up at the
batch's timesteps, so that callers read `alpha_bar` once for the noising, the target and any loss weighting.
"""

from __future__ import annotations

import torch

from oneword.models.base import BaseModel


def alphas_cumprod(model: BaseModel) -> torch.Tensor:
    """The scheduler's cumulative alphas, float32 (T,)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(model.scheduler_config).alphas_cumprod.float()


def alpha_bar(alphas: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The cumulative alphas (T,) at timesteps `t` (B,), shaped to broadcast over latents: (B, 1, 1, 1)."""
    return alphas[t].view(-1, 1, 1, 1)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Latents `x0` (B, 4, h, w) noised to the timesteps whose `alpha_bar` is `alpha` (B, 1, 1, 1)."""
    return alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise


def velocity(x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The v-prediction target of `x0` noised with `noise` at `alpha` (B, 1, 1, 1)."""
    return alpha.sqrt() * noise - (1 - alpha).sqrt() * x0


def prediction_target(prediction_type: str, x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """What the UNet learns to predict: the noise (`epsilon`), or v for `v_prediction` models."""
    return noise if prediction_type == "epsilon" else velocity(x0, noise, alpha)


def signal_to_noise(alpha: torch.Tensor) -> torch.Tensor:
    """The signal-to-noise ratio alpha_bar / (1 - alpha_bar) at `alpha` (same shape)."""
    return alpha / (1 - alpha)


def unet_place(model: BaseModel) -> tuple[torch.device, torch.dtype]:
    """The UNet's device and dtype, read off its first weight: diffusers' `unet.device` and `unet.dtype` walk every
    module (about a millisecond each on the toy model, several per step)."""
    weight = model.unet.conv_in.weight
    return weight.device, weight.dtype


def unet_predict(model: BaseModel, noisy: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
    """The UNet's output for latents `noisy` (B, 4, h, w) at timesteps `t` (B,) under `cond` (a Conditioning)."""
    device, dtype = unet_place(model)
    kwargs = {}
    if model.is_sdxl:
        h, w = (s * 8 for s in noisy.shape[-2:])
        time_ids = torch.tensor([[h, w, 0, 0, h, w]] * len(noisy), device=device, dtype=dtype)
        kwargs["added_cond_kwargs"] = {"text_embeds": cond.pooled.to(dtype), "time_ids": time_ids}
    return model.unet(noisy.to(device, dtype), t.to(device), cond.context.to(dtype), **kwargs).sample
