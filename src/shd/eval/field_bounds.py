"""Weight vectors as a batched field that also bounds itself over boxes (interval bound propagation).

`MoEField` is what meshing evaluates: called on points (B, P, 3) it gives the expert logits (B, P, E)
exactly as `shd.fields.moe.expert_logits`; `combine` turns them into the shape logit as the field's
config says (max or log-sum-exp); `shape_bounds` gives, for boxes, a lower and an upper bound of the
shape logit at every point of each box, which is what lets meshing skip boxes the level set cannot
cross (shd.eval.sparse_grid).

The bound is interval arithmetic, provable rather than tuned: the encoding's x, sin(2^k x) and
cos(2^k x) are bounded exactly per coordinate over the box (endpoints, plus +-1 where the box holds an
extremum); each linear layer maps centre c and radius r to W c + b and |W| r; ReLU is monotone, so it
maps the interval ends; max and log-sum-exp are monotone in every expert. Floating point: the grid
values being compared are themselves rounded, so every layer's radius is widened by
`2 n u (|W| |c| + |b|)` (n the layer's fan-in, u the unit roundoff: 2^-24 in float32, 2^-11 where
CUDA matmuls run in TF32), which covers the rounding of both the field's dot products and the
bound's own (the classic n u bound on a dot product's error), the encoding by 1e-6 for sin/cos and
the combined logit by 1e-6 (1 + |bound|) for log-sum-exp's exp and log.
"""

from __future__ import annotations

import math

import torch

from shd.fields.config import FieldConfig
from shd.fields.layout import Layout, unflatten
from shd.fields.moe import combine, expert_logits, n_layers

_SIN_ULP = 1e-6
_COMBINE_ROUNDING = 1e-6


def _unit_roundoff(device: torch.device) -> float:
    """Worst relative error of one float32 product-sum here: TF32 matmuls keep 10 mantissa bits."""
    if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return 2.0**-11
    return 2.0**-24


def sin_interval(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact range of sin over [lo, hi] (elementwise, lo <= hi)."""
    slo, shi = lo.sin(), hi.sin()
    low, high = torch.minimum(slo, shi), torch.maximum(slo, shi)
    two_pi = 2 * math.pi
    peak = torch.ceil((lo - math.pi / 2) / two_pi) * two_pi + math.pi / 2  # first max at or after lo
    trough = torch.ceil((lo + math.pi / 2) / two_pi) * two_pi - math.pi / 2
    high = torch.where(peak <= hi, torch.ones_like(high), high)
    low = torch.where(trough <= hi, -torch.ones_like(low), low)
    return low, high


def encoding_interval(lo: torch.Tensor, hi: torch.Tensor, n_freqs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of `positional_encoding` over boxes [lo, hi] (..., 3): (..., 3 + 6 n_freqs) each."""
    if n_freqs == 0:
        return lo, hi
    freqs = 2.0 ** torch.arange(n_freqs, device=lo.device, dtype=lo.dtype)
    slo, shi = lo.unsqueeze(-2) * freqs.unsqueeze(-1), hi.unsqueeze(-2) * freqs.unsqueeze(-1)
    sin_lo, sin_hi = sin_interval(slo, shi)
    cos_lo, cos_hi = sin_interval(slo + math.pi / 2, shi + math.pi / 2)
    low = torch.stack((sin_lo, cos_lo), dim=-2).flatten(-3) - _SIN_ULP
    high = torch.stack((sin_hi, cos_hi), dim=-2).flatten(-3) + _SIN_ULP
    return torch.cat((lo, low), dim=-1), torch.cat((hi, high), dim=-1)


class MoEField:
    """B shapes' mixture-of-experts fields (params as `unflatten` gives them: (B, E, ...) each)."""

    def __init__(self, params: dict[str, torch.Tensor], config: FieldConfig):
        self.params = params
        self.config = config
        self.device = params["layer0.weight"].device

    @classmethod
    def from_flat(
        cls, flat: torch.Tensor, layout: Layout, config: FieldConfig, device: torch.device | str = "cpu"
    ) -> MoEField:
        """(B, D) flat weight vectors as one batched field."""
        return cls(unflatten(flat.detach().float().to(device), layout), config)

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """points (B, P, 3) -> expert logits (B, P, E)."""
        return expert_logits(self.params, points.to(self.device), self.config)

    def combine(self, logits: torch.Tensor) -> torch.Tensor:
        """Expert logits (..., E) -> shape logit (...), max or log-sum-exp as the config says."""
        return combine(logits, self.config)

    def shape_bounds(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds (B, N) of the shape logit over boxes [lo, hi] (B, N, 3)."""
        e_lo, e_hi = self.expert_bounds(lo, hi)
        s_lo, s_hi = self.combine(e_lo), self.combine(e_hi)
        pad = _COMBINE_ROUNDING * (1 + torch.maximum(s_lo.abs(), s_hi.abs()))  # log-sum-exp's rounding
        return s_lo - pad, s_hi + pad

    def expert_bounds(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds (B, N, E) of every expert's logit over boxes [lo, hi] (B, N, 3)."""
        b, n = lo.shape[:2]
        u = _unit_roundoff(self.device)
        x_lo, x_hi = encoding_interval(lo.to(self.device), hi.to(self.device), self.config.n_freqs)
        e = self.params["layer0.weight"].shape[1]
        d = x_lo.shape[-1]
        centre = ((x_lo + x_hi) / 2).unsqueeze(1).expand(b, e, n, d).reshape(b * e, n, d)
        radius = ((x_hi - x_lo) / 2).unsqueeze(1).expand(b, e, n, d).reshape(b * e, n, d)
        last = n_layers(self.params) - 1
        for layer in range(last + 1):
            w = self.params[f"layer{layer}.weight"].flatten(0, 1).transpose(1, 2)  # (B*E, in, out)
            bias = self.params[f"layer{layer}.bias"].flatten(0, 1).unsqueeze(1)
            slack = 2 * w.shape[1] * u
            abs_w = w.abs()
            new_centre = torch.baddbmm(bias, centre, w)
            radius = torch.bmm(radius + slack * centre.abs(), abs_w) + slack * bias.abs()
            centre = new_centre
            if layer < last:
                low, high = (centre - radius).relu(), (centre + radius).relu()
                centre, radius = (low + high) / 2, (high - low) / 2
        lo_out, hi_out = centre - radius, centre + radius
        return lo_out.view(b, e, n).transpose(1, 2), hi_out.view(b, e, n).transpose(1, 2)
