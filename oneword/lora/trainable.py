"""What a LoRA run trains: a down and an up tensor (float32) per layer, added to the frozen layers' outputs by forward
hooks while the run applies them (training, validation, previews and scores all see them).

Each hooked layer gives `module(x) + (alpha / rank) * up(down(x))` (kohya's `networks/lora.py`); the frozen model
may be in bf16 on a GPU: the LoRA's tensors are cast to the input's dtype in the hook, and the gradients reach the
float32 leaves through the cast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from oneword.conditioning.cache import ConditioningCache
from oneword.conditioning.encode import Conditioning, encode_prompts
from oneword.lora.names import UNET_PREFIX, Place, places
from oneword.lora.network import Lora, LoraLayer
from oneword.lora.write import kohya_metadata, save_lora
from oneword.models.base import BaseModel
from oneword.train.groups import ParamGroup
from oneword.train.trainable import tensors_hash

PRECISIONS = {"fp16": torch.float16, "fp32": torch.float32}
"""The `--save-precision` choices."""
HASH_DTYPE = torch.float16
"""A LoRA's digest is of its weights rounded to fp16: what a file of either precision keeps of them."""


@dataclass(frozen=True)
class LoraSettings:
    """What a LoRA run records in its files and how it trains the text encoder."""

    unet_lr: str
    text_encoder_lr: str
    train_text_encoder: bool
    save_dtype: torch.dtype = torch.float16
    cache_conditioning: bool = True
    tag_frequency: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    """kohya's `ss_tag_frequency` of the training captions."""


def new_layer(place: Place, rank: int, alpha: float, generator: torch.Generator) -> LoraLayer:
    """kohya's new layer: down Kaiming-uniform (a = sqrt(5), torch's Linear init), up zeros, so it changes nothing.
    A convolution's down is a convolution of the layer's kernel ([rank, in, kh, kw]), its up 1x1 ([out, rank, 1, 1])."""
    module = place.module
    if isinstance(module, torch.nn.Conv2d):
        down = torch.empty(rank, module.in_channels, *module.kernel_size)
        up = torch.zeros(module.out_channels, rank, 1, 1)
    else:
        down, up = torch.empty(rank, module.in_features), torch.zeros(module.out_features, rank)
    torch.nn.init.kaiming_uniform_(down, a=math.sqrt(5), generator=generator)
    return LoraLayer(down, up, float(alpha))


def lora_hash(lora: Lora) -> str:
    """The digest of every layer's down, up and alpha (rounded to fp16), by kohya key."""
    tensors = []
    for key in sorted(lora.layers):
        layer = lora.layers[key]
        tensors += [(f"{key}.down", layer.down.to(HASH_DTYPE)), (f"{key}.up", layer.up.to(HASH_DTYPE)),
                    (f"{key}.alpha", torch.tensor(float(layer.alpha), dtype=HASH_DTYPE))]
    return tensors_hash(tensors)


def exact_tensors(lora: Lora) -> dict[str, torch.Tensor]:
    """Every layer's down and up at float32 (`KEY.lora_down.weight`, `KEY.lora_up.weight`)."""
    tensors = {}
    for key, layer in lora.layers.items():
        tensors[f"{key}.lora_down.weight"] = layer.down.detach().to("cpu", torch.float32).clone()
        tensors[f"{key}.lora_up.weight"] = layer.up.detach().to("cpu", torch.float32).clone()
    return tensors


def part_of(key: str) -> str:
    """`unet` or `te`: which network a kohya key's layer is in."""
    return "unet" if key.startswith(UNET_PREFIX) else "te"


def is_3x3(layer: LoraLayer) -> bool:
    """A layer of a convolution wider than 1x1 (LoCon's conv rank)."""
    return layer.down.dim() == 4 and tuple(layer.down.shape[2:]) != (1, 1)


def _hook(layer: LoraLayer):
    def add_change(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return output + layer.forward(module, args[0])

    return add_change


class LoraTrainable:
    """The layers of one LoRA as float32 parameters, hooked onto the model's layers for the run."""

    kind = "lora"
    weight_decay = 0.01
    """kohya keeps torch's AdamW default."""

    def __init__(self, lora: Lora, device: torch.device, settings: LoraSettings) -> None:
        self.name = lora.name
        self.base = lora
        self.settings = settings
        self.layers = {
            key: LoraLayer(torch.nn.Parameter(layer.down.detach().to(device, torch.float32).clone()),
                           torch.nn.Parameter(layer.up.detach().to(device, torch.float32).clone()), float(layer.alpha))
            for key, layer in lora.layers.items()
        }
        for key in self._keys("te") if not settings.train_text_encoder else ():
            self.layers[key].down.requires_grad_(False)
            self.layers[key].up.requires_grad_(False)
        self.trains_text_encoder = settings.train_text_encoder and bool(self._keys("te"))
        """Whether layers of the text encoder are trained (the prompts are then encoded with gradients)."""
        self._cache = ConditioningCache() if settings.cache_conditioning and not self.trains_text_encoder else None
        self._trained = [p for group in self.groups(settings.unet_lr) for p in group.params]

    def _keys(self, part: str) -> list[str]:
        return [key for key in self.layers if part_of(key) == part]

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        """`unet` at the run's rate; `text_encoder` at --text-encoder-lr when the text encoder is trained."""
        def tensors(part: str) -> list[torch.Tensor]:
            return [t for key in self._keys(part) for t in (self.layers[key].down, self.layers[key].up)]

        groups = [ParamGroup("unet", tensors("unet"), learn_rate, self.weight_decay)]
        if self.trains_text_encoder:
            groups.append(ParamGroup("text_encoder", tensors("te"), self.settings.text_encoder_lr, self.weight_decay,
                                     option="--text-encoder-lr"))
        return groups

    def parameters(self) -> list[torch.Tensor]:
        """Every trained layer's down and up, the UNet's first."""
        return list(self._trained)

    def conditioning(self, model: BaseModel, prompts: list[str], rows: list[int] | None = None) -> Conditioning:
        """The prompts through the text encoders (with the LoRA's layers on them): with gradients when they are
        trained; else plain, and with --cache-conditioning computed once per prompt."""
        if self.trains_text_encoder:
            return encode_prompts(model, prompts, {}, grad=True, rows=rows)
        if self._cache is None:
            return encode_prompts(model, prompts, {}, grad=False, rows=rows)
        return self._cache.conditioning(model, prompts, rows)

    @contextlib.contextmanager
    def applied(self, model: BaseModel) -> Iterator[None]:
        """Every layer's change added to its module's output, for the run."""
        where = places(model)
        handles = [where[key].module.register_forward_hook(_hook(layer)) for key, layer in self.layers.items()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def sampling(self) -> contextlib.AbstractContextManager:
        """Nothing to switch (no dropout)."""
        return contextlib.nullcontext()

    def snapshot(self, step: int) -> Lora:
        """The layers now, as float32 CPU tensors of their own."""
        layers = {key: LoraLayer(layer.down.detach().to("cpu", torch.float32).clone(),
                                 layer.up.detach().to("cpu", torch.float32).clone(), layer.alpha)
                  for key, layer in self.layers.items()}
        return dataclasses.replace(self.base, layers=layers, step=step)

    def save(self, snapshot: Lora, path: Path, model: BaseModel, name: str) -> None:
        """kohya's safetensors LoRA at --save-precision, with its `ss_*` and `modelspec.*` metadata."""
        lora = dataclasses.replace(snapshot, name=name)
        save_lora(lora, path, kohya_metadata(lora, model, self._recorded(lora)), self.settings.save_dtype)

    def _recorded(self, lora: Lora) -> dict[str, object]:
        """What the metadata records of the run: ranks and alphas as the layers have them, the rates."""
        def most_common(values: list) -> object:
            return max(set(values), key=values.count) if values else None

        plain = [layer for layer in lora.layers.values() if not is_3x3(layer)]
        convs = [layer for layer in lora.layers.values() if is_3x3(layer)]
        recorded: dict[str, object] = {"rank": most_common([layer.rank for layer in plain]),
                                       "alpha": most_common([layer.alpha for layer in plain]),
                                       "unet_lr": self.settings.unet_lr,
                                       "tag_frequency": self.settings.tag_frequency}
        if convs:
            recorded |= {"conv_rank": most_common([layer.rank for layer in convs]),
                         "conv_alpha": most_common([layer.alpha for layer in convs])}
        if self.trains_text_encoder:
            recorded["text_encoder_lr"] = self.settings.text_encoder_lr
        return {k: v for k, v in recorded.items() if v is not None}

    def state_hash(self, snapshot: Lora) -> str:
        """The digest of the layers (rounded to fp16)."""
        return lora_hash(snapshot)

    def exact_weights(self, snapshot: Lora) -> dict[str, torch.Tensor]:
        """The layers at float32, kept in the optimizer state when the files round them (`--resume` continues
        exactly); {} when they are written at float32."""
        return {} if self.settings.save_dtype == torch.float32 else exact_tensors(snapshot)
