"""The shared diffusion maths equals the scheduler's own (diffusers' DDPMScheduler), bit for bit."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from oneword.diffusion import add_noise, alpha_bar, alphas_cumprod, prediction_target, signal_to_noise, velocity
from oneword.models.tiny import build_tiny


@pytest.mark.parametrize("kind", ["sd1", "sd2-v"])
def test_noising_and_the_v_target_equal_the_schedulers_add_noise_and_get_velocity(kind):
    model = build_tiny(kind, seed=0)
    scheduler = DDPMScheduler.from_config(model.scheduler_config)
    alphas = alphas_cumprod(model)
    assert alphas.dtype == torch.float32 and torch.equal(alphas, scheduler.alphas_cumprod.float())
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 4, 8, 8, generator=gen), torch.randn(6, 4, 8, 8, generator=gen)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    alpha = alpha_bar(alphas, t)
    assert alpha.shape == (6, 1, 1, 1)
    assert torch.equal(add_noise(x0, noise, alpha), scheduler.add_noise(x0, noise, t))
    assert torch.equal(velocity(x0, noise, alpha), scheduler.get_velocity(x0, noise, t))
    expected = noise if model.prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, t)
    assert torch.equal(prediction_target(model.prediction_type, x0, noise, alpha), expected)


def test_the_signal_to_noise_ratio_is_alpha_bar_over_its_complement():
    alpha = torch.tensor([0.5, 0.8, 0.2])
    assert torch.allclose(signal_to_noise(alpha), torch.tensor([1.0, 4.0, 0.25]))
