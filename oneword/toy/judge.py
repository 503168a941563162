"""The judge: a small classifier that reads back what a toy-world image shows (shape, colour, ...).

Features and metrics are separate: `Judge` is the feature extractor with one head per factor; the rates
(`agreement`) are plain functions of its predictions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from safetensors.torch import load_file, save_file
from torch import nn

from oneword.toy.world import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, STYLES, Scene, random_scene, render

FACTORS: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "background": tuple(BACKGROUNDS),
    "size": tuple(SIZES),
    "position": tuple(POSITIONS),
    "style": STYLES,
}


class Judge(nn.Module):
    """A small CNN: (B, 3, 64, 64) images in [0, 1] -> logits per factor."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

        # 64 -> 32 -> 16 -> 8 -> 4 px; about 14 M multiply-adds an image
        self.features = nn.Sequential(block(3, w), block(w, 2 * w), block(2 * w, 4 * w), block(4 * w, 4 * w))
        self.heads = nn.ModuleDict({name: nn.Linear(4 * w * 16, len(values)) for name, values in FACTORS.items()})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per factor for images (B, 3, 64, 64) in [0, 1]."""
        x = self.features(images * 2 - 1).flatten(1)  # (B, 4w * 4 * 4)
        return {name: head(x) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, list[str]]:
        """The most likely value of every factor, per image."""
        self.eval()
        logits = self(images)
        return {name: [FACTORS[name][i] for i in logits[name].argmax(1).tolist()] for name in FACTORS}


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """PIL images -> (B, 3, H, W) float tensor in [0, 1]."""
    array = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def _labels(scenes: list[Scene]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor([values.index(getattr(s, name)) for s in scenes]) for name, values in FACTORS.items()}


def _augment(image: Image.Image, rng: random.Random) -> Image.Image:
    # Generated images are softer and noisier than renders: blur and noise make the judge read those too.
    if rng.random() < 0.7:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.4)))
    array = np.asarray(image, dtype=np.float32)
    array = array * rng.uniform(0.9, 1.1) + rng.uniform(-12, 12)
    array += np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(0, 10), array.shape)
    return Image.fromarray(array.clip(0, 255).astype(np.uint8))


def render_batch(rng: random.Random, n: int, *, augment: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`n` random scenes of every kind (hidden shapes and styles at equal odds), rendered, with their labels."""
    scenes = [random_scene(rng, hidden_rate=0.5, style_rate=0.5) for _ in range(n)]
    images = [render(s, seed=rng.randrange(2**31)) for s in scenes]
    if augment:
        images = [_augment(im, rng) for im in images]
    return to_tensor(images), _labels(scenes)


@dataclass
class JudgeTraining:
    """How the judge is trained."""

    steps: int = 1500
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0


def train_judge(config: JudgeTraining, log=print) -> Judge:
    """Train a judge on fresh renders from a fixed seed."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    judge = Judge()
    optimizer = torch.optim.AdamW(judge.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps)
    judge.train()
    for step in range(1, config.steps + 1):
        images, labels = render_batch(rng, config.batch, augment=True)
        logits = judge(images)
        loss = sum(nn.functional.cross_entropy(logits[k], labels[k]) for k in FACTORS)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0:
            log(f"judge step {step}/{config.steps}: loss {loss.item():.4f}")
    return judge.eval()


def judge_accuracy(judge: Judge, n: int = 1000, seed: int = 12345, augment: bool = False) -> dict[str, float]:
    """Accuracy per factor on `n` fresh renders (seeds the training never used)."""
    rng = random.Random(seed)
    correct = {k: 0 for k in FACTORS}
    for start in range(0, n, 100):
        images, labels = render_batch(rng, min(100, n - start), augment=augment)
        with torch.no_grad():
            logits = judge.eval()(images)
        for k in FACTORS:
            correct[k] += int((logits[k].argmax(1) == labels[k]).sum())
    return {k: v / n for k, v in correct.items()}


def save_judge(judge: Judge, path: Path) -> None:
    """Weights as safetensors (fp16: half the size, the same verdicts)."""
    save_file({k: v.half().contiguous() for k, v in judge.state_dict().items()}, str(path))


def load_judge(path: Path) -> Judge:
    """A judge from its safetensors file."""
    judge = Judge()
    judge.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return judge.eval()
