"""`oneword toy pretrain`: the recipe that trains the bundled toy model and its judge from a fixed seed.

Three stages, each a plain function: a VAE (AutoencoderKL, 64 px -> 8x8x4 latents as in Stable Diffusion),
then a CLIP text encoder and a UNet2DConditionModel trained together on cached latents, then the judge.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

from oneword.diffusion import add_noise, alpha_bar, signal_to_noise
from oneword.models.base import BaseModel, TextEncoder
from oneword.models.folder import save_diffusers_folder
from oneword.models.kinds import encoder_specs, kind_config
from oneword.models.tokenizer import clip_tokenizer
from oneword.toy.data import encode_latents, render_dataset, to_float
from oneword.toy.diagnostics import private_rates, reconstruction_agreement
from oneword.toy.judge import (
    JudgeTraining,
    judge_accuracy,
    load_judge,
    save_judge,
    train_judge,
)
from oneword.toy.world import HIDDEN_SHAPES, Scene, caption

Log = Callable[[str], None]


@dataclass
class PretrainConfig:
    """Every setting of the recipe; the defaults are what built the bundled model."""

    seed: int = 0
    """Seed of everything: scenes, captions, initial weights, noise."""
    n_images: int = 20000
    """Distinct rendered scenes (captions are re-drawn for every use)."""
    vae_steps: int = 1500
    vae_batch: int = 32
    vae_lr: float = 2e-3
    vae_logvar_init: float = -8.0
    """Initial log-variance of the posterior: nearly deterministic latents from the first step (a start at 0
    buries the early latents in unit noise, and the decoder learns nothing until the encoder shrinks it)."""
    diffusion_steps: int = 7000
    batch: int = 64
    lr: float = 1e-3
    caption_dropout: float = 0.1
    """Share of empty captions, so that classifier-free guidance works."""
    generic_rate: float = 0.2
    """Share of named-shape captions that say "object": the word then stands for all six shapes about evenly,
    so that no hidden shape is what it mostly means."""
    private_rate: float = 0.75
    """Share of hidden-shape captions whose "object" becomes the shape's private token (see `train_diffusion`)."""
    hidden_share: float = 0.5
    """Share of hidden-shape scenes in the batches (a quarter of the rendered scenes): drawn more often, so that
    each private token sees about as many examples as a shape word."""
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0
    """Min-SNR loss weighting (Hang et al. 2023): min(SNR, gamma) / SNR per sample; 0 turns it off."""
    judge_steps: int = 800
    text_width: int = 64
    text_layers: int = 2
    unet_channels: tuple[int, ...] = (32, 64, 64)
    eval_every: int = 500
    """Judge a few samples every this many diffusion steps (0: never)."""


def toy_config(cfg: PretrainConfig) -> dict:
    """The SD 1.x kind config cut to toy size (the same classes and layout, small widths)."""
    config = kind_config("sd1")
    # 4 groups: 4-16 channels per group, as in Stable Diffusion's VAE (128-512 channels in 32 groups); one channel
    # per group would normalise away each channel's level, and with it a flat background's colour.
    config["vae"].update(block_out_channels=[16, 32, 64, 64], layers_per_block=1, sample_size=64,
                         norm_num_groups=4, mid_block_add_attention=False)
    n = len(cfg.unet_channels)
    config["unet"].update(
        sample_size=8, block_out_channels=list(cfg.unet_channels), layers_per_block=1,
        cross_attention_dim=cfg.text_width, attention_head_dim=[c // 16 for c in cfg.unet_channels],
        down_block_types=["CrossAttnDownBlock2D"] * n, up_block_types=["CrossAttnUpBlock2D"] * n,
    )
    config["text_encoders"][0]["config"].update(
        hidden_size=cfg.text_width, intermediate_size=cfg.text_width * 4, num_attention_heads=max(1, cfg.text_width // 32),
        num_hidden_layers=cfg.text_layers, projection_dim=cfg.text_width,
    )
    return config


def train_vae(config: dict, images: torch.Tensor, cfg: PretrainConfig, log: Log) -> AutoencoderKL:
    """An AutoencoderKL trained to reconstruct renders (MSE plus a light KL term)."""
    torch.manual_seed(cfg.seed)
    vae = AutoencoderKL(**{k: v for k, v in config["vae"].items() if not k.startswith("_")})
    c = config["vae"]["latent_channels"]
    with torch.no_grad():
        vae.quant_conv.bias[c:] = cfg.vae_logvar_init
    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    vae.train()
    for step in range(1, cfg.vae_steps + 1):
        lr = cfg.vae_lr * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * step / cfg.vae_steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = to_float(images[torch.randint(len(images), (cfg.vae_batch,), generator=gen)])
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=gen)).sample
        loss = nn.functional.mse_loss(recon, x) + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            log(f"vae step {step}/{cfg.vae_steps}: loss {loss.item():.5f}")
    return vae.eval().requires_grad_(False)


@torch.no_grad()
def standardize_latents(vae: AutoencoderKL, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Fold a per-channel standardisation of the latents into the VAE's 1x1 quant convolutions (exact).

    Stable Diffusion pipelines only scale latents by one number; latent channels with their own offsets and
    spreads leave colour in a low-variance corner that the UNet learns last. Afterwards the posterior mean has
    zero mean and unit spread per channel, and `scaling_factor` is 1.
    """
    c = mean.numel()
    q, p = vae.quant_conv, vae.post_quant_conv
    q.weight[:c] /= std.view(c, 1, 1, 1)  # mean' = (mean - m) / s
    q.bias[:c] = (q.bias[:c] - mean) / std
    q.bias[c:] -= 2 * std.log()  # logvar' = logvar - 2 log s
    p.bias += (p.weight[:, :, 0, 0] * mean).sum(1)  # z = z' * s + m
    p.weight *= std.view(1, c, 1, 1)
    vae.register_to_config(scaling_factor=1.0)


def _tokenize(tokenizer, texts: list[str]) -> torch.Tensor:
    return tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids


def train_diffusion(
    config: dict, latents: torch.Tensor, scenes: list[Scene], cfg: PretrainConfig, log: Log,
    evaluate: Callable[[UNet2DConditionModel, CLIPTextModel, int], str] | None = None,
) -> tuple[UNet2DConditionModel, CLIPTextModel]:
    """UNet and text encoder trained together from scratch on (latent, fresh caption) pairs; EMA weights returned.

    Each hidden shape has a private token, an extra row of the token embeddings that no word reaches: in
    `cfg.private_rate` of its captions it stands where "object" would. The model thus learns to draw each hidden
    shape from a text feature, as a real model knows concepts it has no single word for, while "object" still
    covers all three evenly. The rows are dropped at the end; an embedding has to find its way back to them.
    """
    torch.manual_seed(cfg.seed + 1)
    spec = encoder_specs(config)[0]
    tokenizer = clip_tokenizer(spec.pad_token)
    text = CLIPTextModel(CLIPTextConfig(**spec.config))
    vocab = text.config.vocab_size
    text.resize_token_embeddings(vocab + len(HIDDEN_SHAPES), mean_resizing=False)
    (object_id,) = tokenizer("object", add_special_tokens=False).input_ids
    unet = UNet2DConditionModel(**{k: v for k, v in config["unet"].items() if not k.startswith("_")})
    scheduler = DDPMScheduler.from_config(config["scheduler"])
    params = [*unet.parameters(), *text.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    rng = random.Random(cfg.seed + 2)
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    alphas = scheduler.alphas_cumprod
    hidden = torch.tensor([s.shape in HIDDEN_SHAPES for s in scenes])
    weights = torch.where(hidden, cfg.hidden_share / hidden.sum().clamp(min=1),
                          (1 - cfg.hidden_share) / (~hidden).sum().clamp(min=1))
    unet.train()
    text.train()
    start = time.time()
    for step in range(1, cfg.diffusion_steps + 1):
        warm = min(1.0, step / 200)
        lr = cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * step / cfg.diffusion_steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.multinomial(weights, cfg.batch, replacement=True, generator=gen)
        captions = ["" if rng.random() < cfg.caption_dropout else caption(scenes[i], rng, generic_rate=cfg.generic_rate)
                    for i in index.tolist()]
        x0 = latents[index]
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.batch,), generator=gen)
        a = alpha_bar(alphas, t)
        noisy = add_noise(x0, noise, a)
        ids = private_tokens(_tokenize(tokenizer, captions), [scenes[i].shape for i in index.tolist()], vocab,
                             object_id, cfg.private_rate, rng)
        context = text(ids).last_hidden_state  # (B, 77, width)
        pred = unet(noisy, t, context).sample
        per_sample = ((pred - noise) ** 2).mean(dim=(1, 2, 3))  # (B,)
        if cfg.min_snr_gamma:
            snr = signal_to_noise(a.flatten())
            per_sample = per_sample * snr.clamp(max=cfg.min_snr_gamma) / snr
        loss = per_sample.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        update_ema(ema, params, step, cfg.ema_decay)
        if step % 100 == 0:
            rate = step / (time.time() - start)
            log(f"diffusion step {step}/{cfg.diffusion_steps}: loss {loss.item():.4f}, {rate:.2f} steps/s")
        if evaluate and cfg.eval_every and step % cfg.eval_every == 0:
            with _swapped(params, ema):
                log(f"diffusion step {step}: EMA weights judged: {evaluate(unet.eval(), text.eval(), step)}")
            unet.train()
            text.train()
    with torch.no_grad():
        for e, p in zip(ema, params):
            p.copy_(e)
    text.resize_token_embeddings(vocab)
    return unet.eval().requires_grad_(False), text.eval().requires_grad_(False)


@torch.no_grad()
def update_ema(ema: list[torch.Tensor], params: list[torch.Tensor], step: int, decay: float) -> None:
    """One step of the weights' moving average, its decay warmed up as (1 + step) / (10 + step) up to `decay`."""
    rate = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema, params):
        e.lerp_(p, 1 - rate)


class _swapped:
    """Temporarily put the EMA weights into the live parameters."""

    def __init__(self, params: list[torch.Tensor], ema: list[torch.Tensor]) -> None:
        self.params, self.ema = params, ema

    def __enter__(self) -> None:
        self.saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, e in zip(self.params, self.ema):
                p.copy_(e)

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for p, s in zip(self.params, self.saved):
                p.copy_(s)


def private_tokens(
    ids: torch.Tensor, shapes: list[str], vocab: int, object_id: int, rate: float, rng: random.Random
) -> torch.Tensor:
    """Token ids (B, 77) with "object" replaced, in a share `rate` of the hidden-shape rows, by the shape's private
    token (id `vocab + i` for the i-th hidden shape)."""
    ids = ids.clone()
    for row, shape in enumerate(shapes):
        if shape in HIDDEN_SHAPES and rng.random() < rate:
            ids[row][ids[row] == object_id] = vocab + HIDDEN_SHAPES.index(shape)
    return ids


def _toy_model(config: dict, unet, vae, text) -> BaseModel:
    spec = encoder_specs(config)[0]
    return BaseModel(kind="sd1", unet=unet, vae=vae,
                     encoders=[TextEncoder(spec=spec, model=text, tokenizer=clip_tokenizer(spec.pad_token))],
                     scheduler_config=dict(config["scheduler"]), name="toy")


def _stage_key(cfg: PretrainConfig, fields: tuple[str, ...], config: dict | None = None) -> str:
    """A digest of the settings a stage depends on: a cached stage is reused only for the same settings."""
    values = {name: getattr(cfg, name) for name in fields}
    text = json.dumps([values, config], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _cached_vae(config: dict, images: torch.Tensor, cfg: PretrainConfig, stages: Path | None, log: Log):
    key = _stage_key(cfg, ("seed", "n_images", "vae_steps", "vae_batch", "vae_lr", "vae_logvar_init"), config["vae"])
    path = stages / f"vae-{key}.safetensors" if stages else None
    vae = AutoencoderKL(**{k: v for k, v in config["vae"].items() if not k.startswith("_")})
    if path and path.is_file():
        vae.load_state_dict(load_file(str(path)))
        log(f"VAE: reusing {path}")
        return vae.eval().requires_grad_(False)
    vae = train_vae(config, images, cfg, log)
    if path:
        stages.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(path))
    return vae


def _cached_judge(cfg: PretrainConfig, stages: Path | None, log: Log):
    key = _stage_key(cfg, ("seed", "judge_steps"))
    path = stages / f"judge-{key}.safetensors" if stages else None
    if path and path.is_file():
        log(f"judge: reusing {path}")
        return load_judge(path)
    judge = train_judge(JudgeTraining(steps=cfg.judge_steps, seed=cfg.seed), log)
    if path:
        stages.mkdir(parents=True, exist_ok=True)
        save_judge(judge, path)
        judge = load_judge(path)  # the fp16-rounded weights the bundle ships, whether cached or not
    return judge


def pretrain(cfg: PretrainConfig, out: Path, log: Log = print, stages: Path | None = None) -> dict:
    """Run the whole recipe and write the bundle into `out` (a diffusers folder plus `judge.safetensors`).

    With `stages`, the VAE and the judge are kept there and reused by a later run with the same settings, and the
    EMA model is written to `stages/step-N/` at each evaluation.
    """
    timings = {}
    t0 = time.time()
    config = toy_config(cfg)
    images, scenes = render_dataset(cfg.n_images, cfg.seed)
    timings["render_s"] = time.time() - t0
    log(f"rendered {len(images)} scenes in {timings['render_s']:.0f} s")

    t = time.time()
    vae = _cached_vae(config, images, cfg, stages, log)
    timings["vae_s"] = time.time() - t
    raw = encode_latents(vae, images)
    standardize_latents(vae, raw.mean(dim=(0, 2, 3)), raw.std(dim=(0, 2, 3)))
    config["vae"]["scaling_factor"] = 1.0
    latents = encode_latents(vae, images)
    log(f"latents per channel: mean {latents.mean(dim=(0, 2, 3)).tolist()}, std {latents.std(dim=(0, 2, 3)).tolist()}")

    t = time.time()
    judge = _cached_judge(cfg, stages, log)
    timings["judge_s"] = time.time() - t
    accuracy = judge_accuracy(judge)
    log("judge accuracy on fresh renders: " + ", ".join(f"{k} {v:.1%}" for k, v in accuracy.items()))
    log("judge on VAE reconstructions: " + ", ".join(f"{k} {v:.1%}" for k, v in reconstruction_agreement(vae, judge).items()))

    def evaluate(unet, text, step: int) -> str:
        from oneword.toy.report import ReportConfig, concept_baselines, word_rates

        model = _toy_model(config, unet, vae, text)
        if stages:
            save_diffusers_folder(model, stages / f"step-{step}")
        rc = ReportConfig(samples=15, steps=15)
        rates, _ = word_rates(model, judge, rc)
        rates.update({f"baseline {k}": v for k, v in concept_baselines(model, judge, rc)[0].items()})
        rates.update(private_rates(model, judge, rc))
        return ", ".join(f"{k} {v:.0%}" for k, v in rates.items())

    t = time.time()
    unet, text = train_diffusion(config, latents, scenes, cfg, log, evaluate)
    timings["diffusion_s"] = time.time() - t

    model = _toy_model(config, unet, vae, text)
    for module in model.modules():
        module.half()
    out.mkdir(parents=True, exist_ok=True)
    save_diffusers_folder(model, out)
    save_judge(judge, out / "judge.safetensors")
    timings["total_s"] = time.time() - t0
    info = {"recipe": asdict(cfg), "timings": timings, "judge_accuracy": accuracy}
    (out / "toy.json").write_text(json.dumps(info, indent=2) + "\n")
    return info

