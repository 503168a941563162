"""The diffusers pipeline for a BaseModel (the model's own parts, no copies)."""

from __future__ import annotations

from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.schedulers import DDIMScheduler

from oneword.models.base import BaseModel


def make_pipeline(model: BaseModel, scheduler=None) -> DiffusionPipeline:
    """A StableDiffusion(XL)Pipeline sharing the model's modules; `scheduler` defaults to the model's own config."""
    scheduler = scheduler or DDIMScheduler.from_config(model.scheduler_config)
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
