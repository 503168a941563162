"""Sampler names users know (A1111's list) mapped to diffusers schedulers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from oneword.errors import OnewordError


@dataclass(frozen=True)
class Sampler:
    """A sampler: the name on the command line, A1111's display name, and how to build it."""

    name: str
    label: str
    """The name A1111 writes into PNG parameters (`Sampler: Euler a`)."""
    cls: type[SchedulerMixin]
    overrides: dict[str, Any]


SAMPLERS = {
    s.name: s
    for s in (
        Sampler("euler_a", "Euler a", EulerAncestralDiscreteScheduler, {}),
        Sampler("euler", "Euler", EulerDiscreteScheduler, {}),
        Sampler("ddim", "DDIM", DDIMScheduler, {}),
        Sampler("dpmpp_2m", "DPM++ 2M", DPMSolverMultistepScheduler,
                {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False}),
        Sampler("dpmpp_2m_karras", "DPM++ 2M Karras", DPMSolverMultistepScheduler,
                {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    )
}


def get_sampler(name: str) -> Sampler:
    """The sampler called `name`; a OnewordError naming --sampler and the known names otherwise."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise OnewordError(f"--sampler: unknown sampler {name!r}; known: {', '.join(SAMPLERS)}") from None


def make_scheduler(sampler: Sampler, model_scheduler_config: dict[str, Any]) -> SchedulerMixin:
    """A fresh scheduler of the sampler's kind with the model's noise schedule and prediction type."""
    config = {k: v for k, v in model_scheduler_config.items() if not k.startswith("_")}
    # A1111's samplers space timesteps over the whole schedule ("trailing"-like spacing for k-diffusion);
    # diffusers' defaults per scheduler are kept, only the training schedule and prediction type are shared.
    return sampler.cls.from_config({**config, **sampler.overrides})
