"""Analytic batched fields for tests: per-expert logits = sharpness * (negative signed-distance-like)."""

from __future__ import annotations

import torch

SHARPNESS = 50.0


def sphere_logit(p: torch.Tensor, center, radius: float, sharpness: float = SHARPNESS) -> torch.Tensor:
    c = torch.as_tensor(center, dtype=p.dtype, device=p.device)
    return sharpness * (radius - (p - c).norm(dim=-1))


def box_logit(p: torch.Tensor, center, half, sharpness: float = SHARPNESS) -> torch.Tensor:
    c = torch.as_tensor(center, dtype=p.dtype, device=p.device)
    h = torch.as_tensor(half, dtype=p.dtype, device=p.device)
    return sharpness * -((p - c).abs() - h).amax(dim=-1)


def field_of(*experts):
    """A FieldFn whose expert e is experts[e](points) -> (B, P); every shape of the batch alike."""

    def field(points: torch.Tensor) -> torch.Tensor:
        return torch.stack([f(points) for f in experts], dim=-1)

    return field


def sphere_field(radius: float = 0.3, center=(0.0, 0.0, 0.0)):
    return field_of(lambda p: sphere_logit(p, center, radius))


def two_sphere_field():
    """Expert 0: sphere at x = -0.15, expert 1: sphere at x = +0.15 (both radius 0.25)."""
    return field_of(
        lambda p: sphere_logit(p, (-0.15, 0, 0), 0.25), lambda p: sphere_logit(p, (0.15, 0, 0), 0.25)
    )


def airplane_field():
    """Four experts shaped like body, wings, tail and engines (y up, nose towards +z); sharp, so that
    the thin wings survive the 0.8 level."""
    k = 4.0
    return field_of(
        lambda p: k * sphere_logit(p * torch.tensor([1.0, 1.0, 0.22], device=p.device), (0, 0, 0), 0.085),
        lambda p: k * box_logit(p, (0, 0, 0.02), (0.42, 0.015, 0.08)),
        lambda p: (
            k
            * torch.maximum(
                box_logit(p, (0, 0.09, -0.34), (0.02, 0.1, 0.05)),
                box_logit(p, (0, 0.03, -0.36), (0.15, 0.012, 0.04)),
            )
        ),
        lambda p: (
            k
            * torch.maximum(
                sphere_logit(p * torch.tensor([1.0, 1.0, 0.4], device=p.device), (0.2, -0.05, 0.03), 0.04),
                sphere_logit(p * torch.tensor([1.0, 1.0, 0.4], device=p.device), (-0.2, -0.05, 0.03), 0.04),
            )
        ),
    )


def per_shape_field(fields):
    """Shape b of the batch is fields[b]; shapes with fewer experts are padded with absent (-1e4) ones."""

    def field(points: torch.Tensor) -> torch.Tensor:
        outs = [f(points[b : b + 1])[0] for b, f in enumerate(fields)]
        e = max(o.shape[-1] for o in outs)
        outs = [torch.nn.functional.pad(o, (0, e - o.shape[-1]), value=-1e4) for o in outs]
        return torch.stack(outs, dim=0)

    return field


def constant_field(value: float, experts: int = 1):
    return field_of(*[lambda p: torch.full(p.shape[:-1], value, dtype=p.dtype, device=p.device)] * experts)
