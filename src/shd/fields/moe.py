"""The field itself: batched functional evaluation of stacked experts, their combination and loss.

Everything takes a batch of B shapes: parameters (B, E, ...) and points (B, P, 3). Each op is a
batched matmul or elementwise over (shape, expert), so shapes never mix: the per-shape gradient of
the summed loss is exactly the gradient of that shape's own loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from shd.fields.config import FieldConfig
from shd.fields.encoding import encoded_dim, positional_encoding
from shd.fields.layout import Layout, make_layout, unflatten


def n_layers(params: dict[str, torch.Tensor]) -> int:
    return sum(1 for k in params if k.endswith(".weight"))


def expert_logits(params: dict[str, torch.Tensor], points: torch.Tensor, config: FieldConfig) -> torch.Tensor:
    """Logits of every expert: params (B, E, ...) and points (B, P, 3) -> (B, P, E)."""
    b, p = points.shape[:2]
    w0 = params["layer0.weight"]
    e = w0.shape[1]
    x = positional_encoding(points, config.n_freqs)
    h = x.unsqueeze(1).expand(b, e, p, x.shape[-1]).reshape(b * e, p, x.shape[-1])  # shared input
    last = n_layers(params) - 1
    for layer in range(last + 1):
        w = params[f"layer{layer}.weight"].flatten(0, 1)  # (B*E, out, in)
        bias = params[f"layer{layer}.bias"].flatten(0, 1).unsqueeze(1)  # (B*E, 1, out)
        h = torch.baddbmm(bias, h, w.transpose(1, 2))
        if layer < last:
            h = torch.relu_(h)  # in place: baddbmm's backward does not need its output
    return h.view(b, e, p).transpose(1, 2)


def combine(logits: torch.Tensor, config: FieldConfig) -> torch.Tensor:
    """Shape logit from expert logits (..., E): max (reference) or temperature log-sum-exp."""
    if config.combine == "max":
        return logits.amax(-1)
    t = config.temperature
    return t * torch.logsumexp(logits / t, dim=-1)


def shape_losses(
    logits: torch.Tensor, occupancy: torch.Tensor, labels: torch.Tensor, config: FieldConfig
) -> torch.Tensor:
    """Per-shape loss (B,): mean over points of sum over experts of BCE(expert, label == e).

    Plain fields use BCE on occupancy. `whole_weight` adds BCE of the combined logit on occupancy.
    """
    occ = occupancy.to(logits.dtype)
    if not config.semantic:
        return F.binary_cross_entropy_with_logits(logits[..., 0], occ, reduction="none").mean(-1)
    experts = torch.arange(logits.shape[-1], device=labels.device)
    target = (labels.unsqueeze(-1) == experts).to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1).mean(-1)
    if config.whole_weight:
        whole = F.binary_cross_entropy_with_logits(combine(logits, config), occ, reduction="none")
        loss = loss + config.whole_weight * whole.mean(-1)
    return loss


def init_params(config: FieldConfig, seed: int) -> torch.Tensor:
    """Shared initialization (D,), PyTorch's nn.Linear rule U(+-1/sqrt(fan_in)), from `seed` on CPU.

    Generated on CPU so every device and rank gets bit-identical starting weights.
    """
    layout = make_layout(config)
    gen = torch.Generator().manual_seed(seed)
    flat = torch.empty(layout.dim)
    for b in layout.blocks:
        fan_in = b.shape[-1] if b.tensor == "weight" else _fan_in(layout, b.layer)
        bound = 1.0 / math.sqrt(fan_in)
        flat[b.offset : b.offset + b.size] = (torch.rand(b.size, generator=gen) * 2 - 1) * bound
    return flat


def _fan_in(layout: Layout, layer: int) -> int:
    return next(b.shape[1] for b in layout.blocks if b.layer == layer and b.tensor == "weight")


class FieldModule(nn.Module):
    """One shape's field as ordinary nn.Linear experts (for export, meshing and inspection)."""

    def __init__(self, config: FieldConfig):
        super().__init__()
        self.config = config
        widths = [encoded_dim(config.n_freqs), *config.hidden, 1]
        self.experts = nn.ModuleList()
        for _ in range(config.n_experts):
            mods: list[nn.Module] = []
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
                mods.append(nn.Linear(a, b))
                if i < len(widths) - 2:
                    mods.append(nn.ReLU())
            self.experts.append(nn.Sequential(*mods))

    @classmethod
    def from_flat(cls, vec: torch.Tensor, layout: Layout, config: FieldConfig) -> FieldModule:
        module = cls(config)
        params = unflatten(vec.reshape(1, -1).float(), layout)
        with torch.no_grad():
            for e, expert in enumerate(module.experts):
                linears = [m for m in expert if isinstance(m, nn.Linear)]
                for layer, lin in enumerate(linears):
                    lin.weight.copy_(params[f"layer{layer}.weight"][0, e])
                    lin.bias.copy_(params[f"layer{layer}.bias"][0, e])
        return module

    def expert_logits(self, points: torch.Tensor) -> torch.Tensor:
        """points (..., 3) -> expert logits (..., E)."""
        x = positional_encoding(points, self.config.n_freqs)
        return torch.cat([expert(x) for expert in self.experts], dim=-1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points (..., 3) -> occupancy logit (...); inside where > 0."""
        return combine(self.expert_logits(points), self.config)
