"""The maths of one training step: the batches and randomness of step N, the denoising loss, the UNet call, and the
validation loss. Under several processes each computes the loss of its share of the global batch (see
oneword/train/distributed.py); the randomness is still drawn for the whole batch, so the sum over processes is the
one-process loss.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import torch

from oneword.diffusion import (  # noqa: F401  (alphas_cumprod: the run's schedule, imported from here by the loop)
    add_noise,
    alpha_bar,
    alphas_cumprod,
    prediction_target,
    unet_place,
    unet_predict,
)
from oneword.train.dataset import epoch_batches
from oneword.train.templates import fill_template
from oneword.train.validation import VALIDATION_GROUP, groups_of_equal_shape

if TYPE_CHECKING:
    from oneword.train.loop import Run


def step_generators(seed: int, step: int) -> tuple[torch.Generator, random.Random]:
    """The randomness of one optimizer step (noise, timesteps, template lines, tag order), from (seed, step)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step), random.Random(f"{seed}-step-{step}")


def step_batches(run: Run, step: int) -> list[list[int]]:
    """The image indices of each accumulated batch of optimizer step `step` (1-based)."""
    epoch, epoch_step = divmod(step - 1, run.steps_per_epoch)
    c = run.config
    batches = epoch_batches([im.size for im in run.dataset.images], c.batch_size, c.seed, epoch)
    return [batches[(epoch_step * c.grad_accum + a) % len(batches)] for a in range(c.grad_accum)]


def training_loss(run: Run, indices: list[int], gen: torch.Generator, rng: random.Random) -> torch.Tensor:
    """MSE between the UNet's prediction and its target (noise, or v for v-prediction models) on one batch.

    Under several processes: this process's share of the batch's summed error over the whole batch's size (zero
    when its share is empty), so that the processes' losses add up to the batch's mean.
    """
    c = run.config
    x0 = torch.stack([run.latents.latent(i, gen) for i in indices])  # (B, 4, h, w)
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, len(run.alphas_cumprod), (len(indices),), generator=gen)
    prompts = [
        "" if c.caption_dropout and rng.random() < c.caption_dropout else
        fill_template(rng.choice(run.lines), run.trainable.name, run.dataset.images[i].caption, rng,
                      shuffle_tags=c.shuffle_tags, tag_dropout=c.tag_dropout)
        for i in indices
    ]
    if not run.processes.parallel:
        return denoising_error(run, indices, x0, noise, t, prompts).mean()
    rows = run.processes.share(len(indices))
    if not rows:
        return torch.zeros((), device=unet_place(run.model)[0])
    error = denoising_error(run, [indices[r] for r in rows], x0[rows], noise[rows], t[rows], prompts, rows)
    return error.sum() / len(indices)


def denoising_error(run: Run, indices: list[int], x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
                    prompts: list[str], rows: list[int] | None = None) -> torch.Tensor:
    """Per-sample squared error (B,) of the UNet's prediction on latents `x0` noised with `noise` at timesteps `t`,
    conditioned on `prompts` (the trained vectors in them), weighted by the images' alpha where they have one.

    With `rows`, the samples are those rows of `prompts` (padded to as many chunks as the whole list needs).
    """
    model = run.model
    device = unet_place(model)[0]
    x0, noise = x0.to(device, torch.float32), noise.to(device)
    alpha = alpha_bar(run.alphas_cumprod, t.to(device))
    noisy = add_noise(x0, noise, alpha)
    target = prediction_target(model.prediction_type, x0, noise, alpha)
    trainable = run.trainable
    cond = trainable.conditioning(model, prompts) if rows is None else trainable.conditioning(model, prompts, rows)
    pred = unet_predict(model, noisy, t, cond)
    error = (pred.float() - target) ** 2  # (B, 4, h, w)
    weights = [run.latents.weight[i] for i in indices]
    if any(w is not None for w in weights):
        error = error * torch.stack([w if w is not None else torch.ones_like(error[0, :1]) for w in weights]).to(device)
    return error.mean(dim=(1, 2, 3))


@torch.no_grad()
def validation_loss(run: Run) -> float:
    """Mean denoising error on the run's fixed validation batch with the current weights (dropout off)."""
    with run.trainable.sampling():
        return _validation_loss(run)


def _validation_loss(run: Run) -> float:
    batch = run.validation
    total = 0.0
    for group in groups_of_equal_shape(batch, max(run.config.batch_size, VALIDATION_GROUP)):
        indices = [batch.indices[k] for k in group]
        x0 = torch.stack([run.latents.mean[i] for i in indices])
        noise = torch.stack([batch.noise[k] for k in group])
        t = torch.tensor([batch.timesteps[k] for k in group])
        errors = denoising_error(run, indices, x0, noise, t, [batch.prompts[k] for k in group])
        total += float(errors.sum())
    return total / len(batch.indices)


def clip_gradients(run: Run, done: int) -> None:
    """Clip the gradients of the trainable tensors as `--clip-grad` asks, at the value its schedule gives after
    `done` steps (the last value once the schedule has ended)."""
    if run.clip is None:
        return
    value = run.clip.value(done)
    if value is None:
        value = run.clip.entries[-1][0]
    params = run.trainable.parameters()
    if run.config.clip_grad == "value":
        torch.nn.utils.clip_grad_value_(params, value)
    else:
        torch.nn.utils.clip_grad_norm_(params, value)
