"""A hypernetwork as AUTOMATIC1111 defines it: per context width, two small MLPs that transform the attention
context before the K and the V projections, each computing `x + MLP(x)` (scaled by a strength at inference).

The settings names and meanings are A1111's (`layer_structure`, `activation_func`, `weight_initialization`,
`is_layer_norm`, `use_dropout`, `dropout_structure`, `last_layer_dropout`, `activate_output`), so files move
between the two tools unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "linear": nn.Identity, "relu": nn.ReLU, "leakyrelu": nn.LeakyReLU, "elu": nn.ELU, "swish": nn.Hardswish,
    "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU, "mish": nn.Mish,
    "softsign": nn.Softsign, "softplus": nn.Softplus, "selu": nn.SELU, "celu": nn.CELU,
    "hardtanh": nn.Hardtanh, "hardsigmoid": nn.Hardsigmoid, "tanhshrink": nn.Tanhshrink,
}
"""A1111's activation names (its short list, where `swish` is Hardswish, plus torch's parameter-free ones)."""
INITIALIZATIONS = ("Normal", "XavierUniform", "XavierNormal", "KaimingUniform", "KaimingNormal")
DEFAULT_STRUCTURE = (1.0, 2.0, 1.0)
MAX_MULTIPLE = 100.0
"""Widest layer accepted, in context widths (real structures stay below 10: `1, 2, 1`, `1, 4, 4, 1`); a wider one
would size gigabytes of weights per module."""
MAX_LAYERS = 32
"""Most numbers accepted in a layer structure (real ones have 3 to 6)."""
DROPOUT = 0.3
"""The rate A1111 puts in hidden layers when a file says `use_dropout` without a `dropout_structure`."""


@dataclass
class HypernetworkSettings:
    """How the MLPs are built; stored in the file beside the weights."""

    layer_structure: list[float] = field(default_factory=lambda: list(DEFAULT_STRUCTURE))
    """Layer widths as multiples of the context width, starting and ending with 1 (`1, 2, 1`)."""
    activation_func: str = "linear"
    weight_initialization: str = "Normal"
    add_layer_norm: bool = False
    use_dropout: bool = False
    dropout_structure: list[float] | None = None
    """A dropout rate after each layer (first and last 0); None when the file has none."""
    last_layer_dropout: bool = False
    """With `use_dropout` and no structure: dropout after the last hidden layer too (A1111's rule)."""
    activate_output: bool = False
    """Apply the activation after the last layer too."""

    def problems(self) -> list[str]:
        """Every rule the settings break, as lines naming the setting (empty when they are fine)."""
        out = []
        s = self.layer_structure
        if len(s) < 2:
            out.append(f"layer structure {format_numbers(s)}: needs at least two numbers, like 1, 2, 1")
        elif s[0] != 1 or s[-1] != 1:
            out.append(f"layer structure {format_numbers(s)}: must start and end with 1 (the context width)")
        if any(not x > 0 for x in s):  # NaN too
            out.append(f"layer structure {format_numbers(s)}: every number must be above 0")
        elif any(x > MAX_MULTIPLE for x in s):
            out.append(f"layer structure {format_numbers(s)}: every number must be at most {MAX_MULTIPLE:g} "
                       "(a layer that many times the context width)")
        if len(s) > MAX_LAYERS:
            out.append(f"layer structure: {len(s)} numbers; at most {MAX_LAYERS} are accepted")
        if self.activation_func not in ACTIVATIONS:
            out.append(f"activation {self.activation_func!r}: unknown; one of {', '.join(ACTIVATIONS)}")
        if self.weight_initialization not in INITIALIZATIONS:
            out.append(f"weight initialization {self.weight_initialization!r}: unknown; one of "
                       f"{', '.join(INITIALIZATIONS)}")
        d = self.dropout_structure
        if d is not None:
            if len(d) != len(s):
                out.append(f"dropout structure {format_numbers(d)}: needs one number per layer structure number "
                           f"({len(s)}), has {len(d)}")
            elif d[0] != 0 or d[-1] != 0:
                out.append(f"dropout structure {format_numbers(d)}: must start and end with 0")
            if any(not 0 <= x < 1 for x in d):
                out.append(f"dropout structure {format_numbers(d)}: every rate must be at least 0 and below 1")
        return out

    def dropouts(self) -> list[float]:
        """The rate after each layer: the stored structure, or A1111's rule for files without one."""
        if self.dropout_structure is not None:
            return list(self.dropout_structure)
        n = len(self.layer_structure)
        if not self.use_dropout or n < 3:
            return [0.0] * n
        return [0.0] + [DROPOUT] * (n - 3) + [DROPOUT if self.last_layer_dropout else 0.0, 0.0]


def format_numbers(values: list[float]) -> str:
    """`1, 2, 1` (integers without a decimal point), as users type structures; a list too long to be one is cut."""
    if len(values) > MAX_LAYERS:
        return ", ".join(f"{v:g}" for v in values[:4]) + f", ... ({len(values)} numbers)"
    return ", ".join(f"{v:g}" for v in values)


def parse_numbers(text: str, option: str) -> list[float]:
    """`"1, 2, 1"` -> [1.0, 2.0, 1.0]; ValueError naming `option` for anything that is not a number."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{option} {text!r}: not a comma-separated list of numbers") from None


class Layer(NamedTuple):
    """One entry of a module's MLP: `linear` (width_in -> width), `activation`, `norm` (of width) or `dropout`."""

    kind: str
    width: int = 0
    width_in: int = 0
    rate: float = 0.0


def layer_plan(dim: int, settings: HypernetworkSettings) -> list[Layer]:
    """The layers of a module on context width `dim`, in A1111's order (their index is the state-dict index)."""
    s = settings.layer_structure
    dropouts = settings.dropouts()
    plan = []
    for i in range(len(s) - 1):
        width = int(dim * s[i + 1])
        plan.append(Layer("linear", width, int(dim * s[i])))
        last = i == len(s) - 2
        if settings.activation_func != "linear" and (not last or settings.activate_output):
            plan.append(Layer("activation"))
        if settings.add_layer_norm:
            plan.append(Layer("norm", width))
        if dropouts[i + 1] > 0:
            plan.append(Layer("dropout", rate=dropouts[i + 1]))
    return plan


def state_shapes(dim: int, settings: HypernetworkSettings) -> dict[str, tuple[int, ...]]:
    """State-dict key -> shape of a module on width `dim`, computed without building it (nothing allocated)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for index, layer in enumerate(layer_plan(dim, settings)):
        if layer.kind == "linear":
            shapes[f"linear.{index}.weight"] = (layer.width, layer.width_in)
        elif layer.kind == "norm":
            shapes[f"linear.{index}.weight"] = (layer.width,)
        else:
            continue
        shapes[f"linear.{index}.bias"] = (layer.width,)
    return shapes


class HypernetworkModule(nn.Module):
    """`x + MLP(x) * strength` on a context of width `dim`; the MLP is `linear`, indexed as A1111 indexes it."""

    def __init__(self, dim: int, settings: HypernetworkSettings) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for layer in layer_plan(dim, settings):
            if layer.kind == "linear":
                layers.append(nn.Linear(layer.width_in, layer.width))
            elif layer.kind == "activation":
                layers.append(ACTIVATIONS[settings.activation_func]())
            elif layer.kind == "norm":
                layers.append(nn.LayerNorm(layer.width))
            else:
                layers.append(nn.Dropout(p=layer.rate))
        self.linear = nn.Sequential(*layers)

    def initialize(self, how: str, activation: str, generator: torch.Generator | None = None) -> None:
        """Fresh weights: Normal gives an MLP output near 0 (the module starts as the identity), as in A1111."""
        nonlinearity = "leaky_relu" if activation == "leakyrelu" else "relu"
        for layer in self.linear:
            if not isinstance(layer, (nn.Linear, nn.LayerNorm)):
                continue
            w, b = layer.weight.data, layer.bias.data
            # A1111 draws LayerNorm weights like Normal linears too, which keeps the output near 0.
            if how == "Normal" or isinstance(layer, nn.LayerNorm):
                nn.init.normal_(w, mean=0.0, std=0.01, generator=generator)
            elif how == "XavierUniform":
                nn.init.xavier_uniform_(w, generator=generator)
            elif how == "XavierNormal":
                nn.init.xavier_normal_(w, generator=generator)
            elif how == "KaimingUniform":
                nn.init.kaiming_uniform_(w, nonlinearity=nonlinearity, generator=generator)
            else:
                nn.init.kaiming_normal_(w, nonlinearity=nonlinearity, generator=generator)
            nn.init.zeros_(b)

    def forward(self, x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """(B, tokens, dim) -> the same shape, in x's dtype (the MLP runs in its own, float32)."""
        out = self.linear(x.to(self.linear[0].weight.dtype))
        return x + (out * strength).to(x.dtype)


@dataclass
class Hypernetwork:
    """A named hypernetwork: a (K, V) module pair per context width, its settings and where it came from."""

    name: str
    settings: HypernetworkSettings
    layers: dict[int, tuple[HypernetworkModule, HypernetworkModule]]
    step: int = 0
    sd_checkpoint: str | None = None
    """Short hash of the base model it was trained on."""
    sd_checkpoint_name: str | None = None
    optional_info: str | None = None

    @property
    def trigger_word(self) -> None:
        """None: it acts on every UNet call while applied, whatever the prompt says."""
        return None

    def token_vectors(self) -> dict:
        """Nothing on the text side (the snapshot protocol, oneword/snapshot.py)."""
        return {}

    def network_modules(self) -> list[tuple[Hypernetwork, float]]:
        """Itself at strength 1, on the UNet's cross-attention keys and values."""
        return [(self, 1.0)]

    @property
    def widths(self) -> list[int]:
        """The context widths it has modules for, in increasing order."""
        return sorted(self.layers)

    def parameters(self) -> list[torch.Tensor]:
        """Every weight of every module, K before V, widths in increasing order."""
        return [p for w in self.widths for module in self.layers[w] for p in module.parameters()]

    def modules(self) -> list[HypernetworkModule]:
        """Every module, K before V, widths in increasing order."""
        return [module for w in self.widths for module in self.layers[w]]

    def train(self, mode: bool = True) -> None:
        """Dropout on (training) or off (sampling)."""
        for module in self.modules():
            module.train(mode)

    def to(self, device: torch.device | str) -> Hypernetwork:
        """Move every module (float32 stays float32); returns itself."""
        for module in self.modules():
            module.to(device)
        return self


def new_hypernetwork(name: str, widths: list[int], settings: HypernetworkSettings, seed: int = 0) -> Hypernetwork:
    """Fresh modules for `widths` (settings already checked), their weights drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    layers = {}
    for width in sorted(set(widths)):
        pair = (HypernetworkModule(width, settings), HypernetworkModule(width, settings))
        for module in pair:
            module.initialize(settings.weight_initialization, settings.activation_func, generator)
            module.eval()
        layers[width] = pair
    return Hypernetwork(name=name, settings=settings, layers=layers)
