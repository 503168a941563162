"""txt2img with embeddings and prompt tags (`<hypernet:...>`, `<lora:...>`): A1111 prompt conditioning fed to a
diffusers pipeline."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from oneword.conditioning.encode import embeddings_used, encode_pair
from oneword.conditioning.tags import Effect, TagLibrary
from oneword.embeddings.embedding import Embedding
from oneword.extra_networks import resolve, text_encoders_applied, unets_applied, with_tag_embeddings
from oneword.generate.config import GenerateConfig
from oneword.generate.pnginfo import ImageParameters, format_parameters, save_png, ti_hashes
from oneword.generate.progress import step_callback
from oneword.generate.samplers import get_sampler, make_scheduler
from oneword.models.base import BaseModel
from oneword.models.pipeline import make_pipeline


@dataclass
class GeneratedImage:
    """One image and the parameters that reproduce it."""

    image: Image.Image
    parameters: ImageParameters


def native_size(model: BaseModel) -> int:
    """The model's training resolution in pixels (512 SD 1.x, 768 SD 2.x-v, 1024 SDXL, 64 tiny)."""
    return int(model.vae.config.sample_size)


def initial_noise(model: BaseModel, seeds: list[int], width: int, height: int) -> torch.Tensor:
    """Starting latents, one generator per seed, so an image drawn in a batch equals the same image drawn alone."""
    channels = model.unet.config.in_channels
    factor = 2 ** (len(model.vae.config.block_out_channels) - 1)
    shape = (channels, height // factor, width // factor)
    noise = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s)) for s in seeds]
    return torch.stack(noise)  # (B, 4, H/8, W/8)


def generate(
    model: BaseModel, config: GenerateConfig, embeddings: Mapping[str, Embedding] | None = None,
    *libraries: TagLibrary, applied: Sequence[Effect] = (),
) -> list[GeneratedImage]:
    """Draw `config.batch` images; the same model, settings and seed give the same pixels on the CPU.

    Prompt tags (`<hypernet:NAME:STRENGTH>`, `<lora:NAME:WEIGHT>`, oneword/extra_networks.py) pick their files from
    `libraries`; their effects add their fields to the parameters (`Lora hashes`), and the embeddings the prompts
    use theirs (`TI hashes`). `applied` are further effects, after the tags' (a checkpoint `compare` draws with).
    """
    images, seeds, width, height, extra = _sample(model, config, embeddings, libraries, "pil", applied)
    label = get_sampler(config.sampler).label
    return [
        GeneratedImage(
            image=image,
            parameters=ImageParameters(
                prompt=config.prompt, negative=config.negative, steps=config.steps, sampler=label,
                cfg=config.cfg, seed=seed, width=width, height=height, model_hash=model.short_hash,
                model_name=model.name, extra=extra,
            ),
        )
        for image, seed in zip(images, seeds)
    ]


def generate_latents(
    model: BaseModel, config: GenerateConfig, embeddings: Mapping[str, Embedding] | None = None,
    *libraries: TagLibrary,
) -> torch.Tensor:
    """The final latents (B, 4, H/8, W/8) of what `generate` would draw, without decoding them."""
    return _sample(model, config, embeddings, libraries, "latent")[0]


def _sample(model: BaseModel, config: GenerateConfig, embeddings: Mapping[str, Embedding] | None,
            libraries: tuple[TagLibrary, ...], output_type: str, applied: Sequence[Effect] = ()):
    """Run the pipeline: (images or latents, seeds, width, height, the infotext fields of the networks and
    embeddings the prompts used: `Lora hashes`, `TI hashes`)."""
    sampler = get_sampler(config.sampler)
    width = config.width or native_size(model)
    height = config.height or native_size(model)
    first_seed = config.seed if config.seed >= 0 else random.randrange(2**32 - config.batch)
    seeds = [first_seed + i for i in range(config.batch)]

    prompt, effects = resolve(config.prompt, libraries)
    effects = [*effects, *applied]
    words = with_tag_embeddings(embeddings, effects)
    with text_encoders_applied(effects, model):
        cond, uncond = encode_pair(model, prompt, config.negative, words)
    used = [words[word] for word in embeddings_used(model, [prompt, config.negative], words)]
    extra = (*(field for effect in effects for field in effect.infotext()), *ti_hashes(used))
    pipe = make_pipeline(model, make_scheduler(sampler, model.scheduler_config))
    dtype = model.unet.dtype
    latents = initial_noise(model, seeds, width, height).to(model.device, dtype)
    # Ancestral samplers draw fresh noise each step: one generator per image keeps batches reproducible.
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    kwargs = dict(
        prompt_embeds=cond.context.to(dtype),
        negative_prompt_embeds=uncond.context.to(dtype),
        num_images_per_prompt=config.batch,
        num_inference_steps=config.steps,
        guidance_scale=config.cfg,
        width=width,
        height=height,
        latents=latents,
        generator=generators,
        output_type=output_type,
    )
    if (callback := step_callback(config.batch, config.steps)) is not None:  # a progress bar watches
        kwargs["callback_on_step_end"] = callback
    if model.is_sdxl:
        kwargs.update(pooled_prompt_embeds=cond.pooled.to(dtype), negative_pooled_prompt_embeds=uncond.pooled.to(dtype))
    with torch.inference_mode(), unets_applied(effects, model):
        out = pipe(**kwargs).images
    return out, seeds, width, height, extra


def save_images(images: list[GeneratedImage], out: Path) -> list[Path]:
    """Write images as `NNNNN-SEED.png` (A1111's naming), numbering on from what the folder holds."""
    out.mkdir(parents=True, exist_ok=True)
    start = _next_index(out)
    paths = []
    for i, item in enumerate(images):
        path = out / f"{start + i:05d}-{item.parameters.seed}.png"
        save_png(item.image, path, format_parameters(item.parameters))
        paths.append(path)
    return paths


def _next_index(folder: Path) -> int:
    numbers = [int(p.name[:5]) for p in folder.glob("[0-9][0-9][0-9][0-9][0-9]-*.png")]
    return max(numbers, default=-1) + 1
