"""Applying hypernetworks to a diffusers UNet: each attention layer's context passes through the (K, V) modules
of its width before the K and V projections, as in A1111, where self-attention (context = the hidden states,
width 320/640/1280 on SD 1.x) is transformed too when the hypernetwork has a module of that width."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from oneword.errors import OnewordError
from oneword.hypernetworks.hypernetwork import Hypernetwork

Active = Sequence[tuple[Hypernetwork, float]]
"""Hypernetworks in the order they apply, each with its strength."""


class HypernetworkAttnProcessor:
    """Attention with the hypernetworks' K and V context transforms; the layer's own processor where none applies.

    The computation mirrors diffusers' scaled-dot-product processor step for step, so a strength of 0 gives the
    same numbers as no hypernetwork.
    """

    def __init__(self, original, active: Active) -> None:
        self.original = original
        self.active = list(active)

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args, **kwargs):
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        pairs = [(hn.layers[context.shape[-1]], s) for hn, s in self.active if context.shape[-1] in hn.layers]
        if not pairs or hidden_states.ndim != 3:
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        if attn.spatial_norm is not None or attn.group_norm is not None:
            raise OnewordError("hypernetworks cannot be applied to this model's attention layers (they have norms "
                               "before attention that A1111 hypernetworks do not know)")
        batch, _, _ = hidden_states.shape
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        context_k = context_v = context
        for (module_k, module_v), strength in pairs:
            context_k, context_v = module_k(context_k, strength), module_v(context_v, strength)
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        query = attn.to_q(hidden_states)
        key = attn.to_k(context_k)
        value = attn.to_v(context_v)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0,
                                             is_causal=False)  # (B, heads, N, head_dim)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


@contextlib.contextmanager
def hypernetworks_applied(model: torch.nn.Module, active: Active) -> Iterator[None]:
    """Within the block, every attention layer of `model` (a UNet, or one attention layer) applies `active`, after
    any hypernetworks applied already; the layers' processors are restored on exit.

    The modules are moved to the model's device; they keep their float32 weights.
    """
    active = [(hn, s) for hn, s in active]
    if not active:
        yield
        return
    device = next(model.parameters()).device
    for hn, _ in active:
        hn.to(device)
    layers = [m for m in model.modules() if hasattr(m, "set_processor") and hasattr(m, "to_k")]
    original = [layer.processor for layer in layers]
    for layer, processor in zip(layers, original):
        if isinstance(processor, HypernetworkAttnProcessor):
            layer.processor = HypernetworkAttnProcessor(processor.original, [*processor.active, *active])
        else:
            layer.processor = HypernetworkAttnProcessor(processor, active)
    try:
        yield
    finally:
        for layer, processor in zip(layers, original):
            layer.processor = processor


def widths_of(unet: torch.nn.Module) -> list[int]:
    """The context widths the UNet's attention layers see: its text width (cross-attention) and the hidden
    widths of its self-attention, A1111's default modules for the model (768, 320, 640, 1280 on SD 1.x)."""
    widths = {int(unet.config.cross_attention_dim if isinstance(unet.config.cross_attention_dim, int)
                  else max(unet.config.cross_attention_dim))}
    for name, module in unet.named_modules():
        if name.endswith("attn1") and hasattr(module, "to_k"):
            widths.add(int(module.to_k.in_features))
    return sorted(widths)
