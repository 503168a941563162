"""The diffusers pipeline for a BaseModel (the model's own parts, no copies)."""

from __future__ import annotations

import diffusers
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from oneword.models.base import BaseModel


def make_pipeline(model: BaseModel, scheduler=None) -> DiffusionPipeline:
    """A StableDiffusion(XL)Pipeline sharing the model's modules; `scheduler` defaults to the model's own."""
    scheduler = scheduler or model_scheduler(model)
    first = model.encoders[0]
    if model.is_sdxl:
        second = model.encoders[1]
        pipe = StableDiffusionXLPipeline(
            vae=model.vae, text_encoder=first.model, text_encoder_2=second.model, tokenizer=first.tokenizer,
            tokenizer_2=second.tokenizer, unet=model.unet, scheduler=scheduler, force_zeros_for_empty_prompt=True,
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=model.vae, text_encoder=first.model, tokenizer=first.tokenizer, unet=model.unet,
            scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def model_scheduler(model: BaseModel) -> SchedulerMixin:
    """The scheduler the model's config names (`_class_name`), DDIM when it names none oneword knows."""
    name = model.scheduler_config.get("_class_name", "DDIMScheduler")
    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        cls = diffusers.DDIMScheduler
    return cls.from_config(model.scheduler_config)
