"""Hypernetwork files built by hand, as A1111 writes them."""

from __future__ import annotations

from collections import OrderedDict

import torch


def a1111_file(path, widths, seed: int, old_keys: bool = False, scale: float = 0.05) -> dict:
    """A file as A1111 writes it (or as the oldest NovelAI-era files are: linear1/linear2 keys, no settings)."""
    gen = torch.Generator().manual_seed(seed)

    def module(width):
        names = ("linear1", "linear2") if old_keys else ("linear.0", "linear.1")
        return OrderedDict([
            (f"{names[0]}.weight", torch.randn(2 * width, width, generator=gen) * scale),
            (f"{names[0]}.bias", torch.randn(2 * width, generator=gen) * scale),
            (f"{names[1]}.weight", torch.randn(width, 2 * width, generator=gen) * scale),
            (f"{names[1]}.bias", torch.randn(width, generator=gen) * scale),
        ])

    widths = [widths] if isinstance(widths, int) else widths
    data = {width: (module(width), module(width)) for width in widths}
    if not old_keys:
        data.update({"step": 1500, "name": "their-style", "layer_structure": [1, 2, 1], "activation_func": "linear",
                     "is_layer_norm": False, "weight_initialization": "Normal", "sd_checkpoint": "abcdef1234",
                     "sd_checkpoint_name": "v1-5", "activate_output": False, "use_dropout": False,
                     "dropout_structure": [0, 0, 0], "last_layer_dropout": False, "optional_info": None})
    torch.save(data, path)
    return data
