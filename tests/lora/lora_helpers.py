"""LoRAs with random non-zero weights for the tests, and the model outputs they are compared on."""

from __future__ import annotations

import torch

from oneword.lora.names import places
from oneword.lora.network import Lora, LoraLayer


def random_lora(model, name: str = "rand", rank: int = 4, alpha: float = 2.0, seed: int = 0,
                targets: str = "attn-mlp", text_encoder: bool = True, size: float = 0.3) -> Lora:
    """A LoRA over `targets` of `model` with random down and up weights (kohya's layout, LoCon for 3x3 convs)."""
    generator = torch.Generator().manual_seed(seed)
    layers = {}
    for key, place in places(model, targets, text_encoder).items():
        weight = place.module.weight
        kernel = tuple(weight.shape[2:])
        down = torch.randn((rank, weight.shape[1], *kernel), generator=generator) * size
        up = torch.randn((weight.shape[0], rank, *(1,) * len(kernel)), generator=generator) * size
        layers[key] = LoraLayer(down, up, alpha)
    return Lora(name, layers)


def unet_output(model, seed: int = 1) -> torch.Tensor:
    """The UNet's prediction for fixed random inputs (B=1)."""
    generator = torch.Generator().manual_seed(seed)
    config = model.unet.config
    side = config.sample_size
    latents = torch.randn((1, config.in_channels, side, side), generator=generator)
    context = torch.randn((1, 77, config.cross_attention_dim), generator=generator)
    kwargs = {}
    if model.is_sdxl:
        pooled = torch.randn((1, model.encoders[1].model.config.projection_dim), generator=generator)
        kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": torch.tensor([[64., 64, 0, 0, 64, 64]])}
    with torch.no_grad():
        return model.unet(latents, torch.tensor([500]), encoder_hidden_states=context, **kwargs).sample


def text_output(model, index: int = 0) -> torch.Tensor:
    """Text encoder `index`'s last hidden state for a fixed prompt."""
    encoder = model.encoders[index]
    ids = encoder.tokenizer("a photo of a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder.model(ids).last_hidden_state
