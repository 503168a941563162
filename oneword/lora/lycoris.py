"""LyCORIS's LoHa and LoKr layers, as LyCORIS (lycoris/modules/loha.py, lokr.py) and A1111's built-in Lora
extension (network_hada.py, network_lokr.py) compute them.

LoHa: delta = (w1a @ w1b) * (w2a @ w2b) * alpha / rank (`*` element-wise); with Tucker factors (`hada_t1`,
`hada_t2`, [rank, rank, kh, kw]) each product is rebuilt as t contracted with wa [rank, out] and wb [rank, in].
LoKr: delta = kron(w1, w2), each of w1 and w2 either whole (`lokr_w1`) or a product (`lokr_w1_a @ lokr_w1_b`, w2
also with a Tucker core `lokr_t2`); scaled by alpha / rank only when a factor is a product (rank = its inner
width), else by 1, as LyCORIS, A1111 and ComfyUI do.

Each layer knows its weight change's shape from its factors' shapes alone (`shape`, a Misfit when the factors do not
multiply), so that a change is only computed once it is known to fit its module: a few KB of factors can ask for
gigabytes (kron of 100x100 and 250x200 is 25,000 x 20,000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from oneword.lora.network import Misfit

HADA_PARTS = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")
LOKR_PARTS = ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")


def _dims(tensor: torch.Tensor, name: str, allowed: tuple[int, ...]) -> tuple[int, ...]:
    if tensor.dim() not in allowed or 0 in tensor.shape:
        raise Misfit(f"{name} {list(tensor.shape)} is not a factor")
    return tuple(tensor.shape)


def product_shape(wa: torch.Tensor, wb: torch.Tensor, names: tuple[str, str]) -> tuple[int, ...]:
    """The shape of `product(wa, wb)`: [out, ...] from wa [out, r] and wb [r, ...]; Misfit when they do not
    multiply."""
    a, b = _dims(wa, names[0], (2,)), _dims(wb, names[1], (2, 4))
    if a[1] != b[0]:
        raise Misfit(f"{names[0]} {list(a)} and {names[1]} {list(b)} do not multiply")
    return (a[0], *b[1:])


def tucker_shape(t: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor, names: tuple[str, str, str]) -> tuple[int, ...]:
    """The shape of `tucker(t, wa, wb)`: [out, in, kh, kw]; Misfit when the core does not fit the two sides."""
    core, a, b = _dims(t, names[0], (4,)), _dims(wa, names[1], (2,)), _dims(wb, names[2], (2,))
    if (a[0], b[0]) != core[:2]:
        raise Misfit(f"{names[0]} {list(core)} does not fit {names[1]} {list(a)} and {names[2]} {list(b)}")
    return (a[1], b[1], *core[2:])


def tucker(t: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    """A Tucker (CP) factored kernel: core t [r, r, kh, kw], wa [r, out], wb [r, in] -> [out, in, kh, kw]."""
    return torch.einsum("ijkl,jr,ip->prkl", t, wb, wa)


def product(wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    """wa [out, r] @ wb [r, ...], keeping wb's trailing (kernel) dimensions: [out, ...]."""
    return (wa.flatten(1) @ wb.flatten(1)).reshape(wa.shape[0], *wb.shape[1:])


def apply_weight(module: torch.nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`module`'s operation on `x` with `weight` in place of its own and no bias."""
    if isinstance(module, torch.nn.Conv2d):
        weight = weight.reshape(module.weight.shape)
        return F.conv2d(x, weight, None, module.stride, module.padding, module.dilation, module.groups)
    return F.linear(x, weight.reshape(module.weight.shape))


@dataclass
class LohaLayer:
    """LyCORIS LoHa (Hadamard product of two low-rank products)."""

    w1a: torch.Tensor
    w1b: torch.Tensor
    w2a: torch.Tensor
    w2b: torch.Tensor
    alpha: float
    t1: torch.Tensor | None = None
    t2: torch.Tensor | None = None

    @property
    def rank(self) -> int:
        return self.w1b.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """The weight change's shape, from the factors' shapes (nothing computed); Misfit when they make none."""
        first = tucker_shape(self.t1, self.w1a, self.w1b, ("hada_t1", "hada_w1_a", "hada_w1_b")) \
            if self.t1 is not None else product_shape(self.w1a, self.w1b, ("hada_w1_a", "hada_w1_b"))
        second = tucker_shape(self.t2, self.w2a, self.w2b, ("hada_t2", "hada_w2_a", "hada_w2_b")) \
            if self.t2 is not None else product_shape(self.w2a, self.w2b, ("hada_w2_a", "hada_w2_b"))
        if math.prod(first) != math.prod(second):
            raise Misfit(f"its two products ({_size(first)} and {_size(second)}) differ in size")
        return first

    def delta(self) -> torch.Tensor:
        """(w1a @ w1b) * (w2a @ w2b) * alpha / rank, float32."""
        first = tucker(self.t1.float(), self.w1a.float(), self.w1b.float()) if self.t1 is not None \
            else product(self.w1a.float(), self.w1b.float())
        second = tucker(self.t2.float(), self.w2a.float(), self.w2b.float()) if self.t2 is not None \
            else product(self.w2a.float(), self.w2b.float())
        return first * second.reshape(first.shape) * (self.alpha / self.rank)

    def forward(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The module's operation with the weight change (computed at each call: oneword/lora/apply.py computes it
        once per block instead)."""
        return apply_weight(module, x, self.delta().to(x.device, x.dtype))


@dataclass
class LokrLayer:
    """LyCORIS LoKr (Kronecker product of two factors, each whole or low-rank)."""

    w1: torch.Tensor | None
    w1a: torch.Tensor | None
    w1b: torch.Tensor | None
    w2: torch.Tensor | None
    w2a: torch.Tensor | None
    w2b: torch.Tensor | None
    alpha: float | None
    t2: torch.Tensor | None = None

    @property
    def rank(self) -> int | None:
        """The inner width of a factored part, or None when both parts are whole."""
        factored = self.w1b if self.w1 is None else self.w2b if self.w2 is None else None
        return None if factored is None else factored.shape[0]

    @property
    def scale(self) -> float:
        return 1.0 if self.rank is None or self.alpha is None else self.alpha / self.rank

    @property
    def shape(self) -> tuple[int, ...]:
        """The weight change's shape, from the factors' shapes (nothing computed); Misfit when they make none."""
        w1 = _dims(self.w1, "lokr_w1", (2,)) if self.w1 is not None \
            else product_shape(self.w1a, self.w1b, ("lokr_w1_a", "lokr_w1_b"))
        if len(w1) != 2:
            raise Misfit(f"lokr_w1_b {list(self.w1b.shape)} is not a factor")
        if self.w2 is not None:
            w2 = _dims(self.w2, "lokr_w2", (2, 4))
        elif self.t2 is not None:
            w2 = tucker_shape(self.t2, self.w2a, self.w2b, ("lokr_t2", "lokr_w2_a", "lokr_w2_b"))
        else:
            w2 = product_shape(self.w2a, self.w2b, ("lokr_w2_a", "lokr_w2_b"))
        return (w1[0] * w2[0], w1[1] * w2[1], *w2[2:])

    def delta(self) -> torch.Tensor:
        """kron(w1, w2) times the scale, float32; [out, in] or [out, in, kh, kw] when w2 has a kernel."""
        w1 = self.w1.float() if self.w1 is not None else self.w1a.float() @ self.w1b.float()
        if self.w2 is not None:
            w2 = self.w2.float()
        elif self.t2 is not None:
            w2 = tucker(self.t2.float(), self.w2a.float(), self.w2b.float())
        else:
            w2 = product(self.w2a.float(), self.w2b.float())
        if w2.dim() == 4:
            w1 = w1[:, :, None, None]
        return torch.kron(w1.contiguous(), w2.contiguous()) * self.scale  # kron needs contiguous (Tucker) factors

    def forward(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The module's operation with the weight change (computed at each call: oneword/lora/apply.py computes it
        once per block instead)."""
        return apply_weight(module, x, self.delta().to(x.device, x.dtype))


@dataclass
class TuckerLoconLayer:
    """LyCORIS's LoCon with a Tucker core (`lora_mid`, what `use_cp`/`use_tucker` gives a 3x3 convolution): a 1x1
    `lora_down` [r, in, 1, 1], the core [r, r, kh, kw] at the module's stride and padding, a 1x1 `lora_up`."""

    down: torch.Tensor
    mid: torch.Tensor
    up: torch.Tensor
    alpha: float

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """The weight change's shape [out, in, kh, kw], from the three parts' shapes; Misfit when they make none."""
        down, mid, up = (_dims(t, f"lora_{name}", (4,)) for t, name in
                         ((self.down, "down"), (self.mid, "mid"), (self.up, "up")))
        if down[2:] != (1, 1) or up[2:] != (1, 1) or mid[:2] != (up[1], down[0]):
            raise Misfit(f"lora_down {list(down)}, lora_mid {list(mid)} and lora_up {list(up)} do not make a layer")
        return (up[0], down[1], *mid[2:])

    def delta(self) -> torch.Tensor:
        """up . mid . down as one kernel [out, in, kh, kw], times alpha / rank, float32."""
        kernel = torch.einsum("abkl,oa,bi->oikl", self.mid.float(), self.up.float().flatten(1),
                              self.down.float().flatten(1))
        return kernel * (self.alpha / self.rank)

    def forward(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The three convolutions in turn, the core at the module's stride, padding and dilation."""
        down, mid, up = (t.to(x.device, x.dtype) for t in (self.down, self.mid, self.up))
        hidden = F.conv2d(F.conv2d(x, down), mid, None, module.stride, module.padding, module.dilation)
        return F.conv2d(hidden, up) * (self.alpha / self.rank)


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def loha_layer(parts: dict[str, torch.Tensor], alpha: float | None) -> LohaLayer:
    """A LoHa layer from its `hada_*` tensors (alpha = rank where the file has none); KeyError for a missing one,
    Misfit for factors that do not make a weight change."""
    layer = LohaLayer(parts["hada_w1_a"], parts["hada_w1_b"], parts["hada_w2_a"], parts["hada_w2_b"], 0.0,
                      parts.get("hada_t1"), parts.get("hada_t2"))
    layer.shape  # noqa: B018  (checks the factors)
    layer.alpha = float(alpha) if alpha is not None else float(layer.rank)
    return layer


def lokr_layer(parts: dict[str, torch.Tensor], alpha: float | None) -> LokrLayer:
    """A LoKr layer from its `lokr_*` tensors; KeyError when w1 or w2 is neither whole nor both halves, Misfit for
    factors that do not make a weight change."""
    for which in ("w1", "w2"):
        if f"lokr_{which}" not in parts and not {f"lokr_{which}_a", f"lokr_{which}_b"} <= parts.keys():
            raise KeyError(f"lokr_{which}")
    layer = LokrLayer(parts.get("lokr_w1"), parts.get("lokr_w1_a"), parts.get("lokr_w1_b"), parts.get("lokr_w2"),
                      parts.get("lokr_w2_a"), parts.get("lokr_w2_b"), alpha, parts.get("lokr_t2"))
    layer.shape  # noqa: B018  (checks the factors)
    return layer
