"""Coarse-to-fine grid evaluation: the field's values only in the bricks the level set can cross.

The R^3 grid's cells are tiled by bricks of `sizes[0]` cells a side; a brick is dropped when the
field's bound over its box (`shape_bounds`, provable: shd.eval.field_bounds) says every grid point in
it is on one side of the level (lower bound > level: all inside; upper bound <= level: all outside),
and the rest are split into bricks of the next size, down to `sizes[-1]`, whose (S+1)^3 grid points
are then evaluated exactly as the dense grid evaluates them (same coordinates, same field call).

Why this gives the dense grid's mesh: marching cubes emits triangles only in cells with corners on
both sides of the level. Every such cell lies in a brick whose grid points are not all on one side,
and such a brick's bound cannot exclude the level, at any size, so it is kept; a brick's box holds all
its grid points, those on its faces included (boxes are padded by 1e-6, far more than the grid
coordinates' rounding). So every crossing cell is evaluated, with the dense
grid's values, however thin the part: nothing here is a tuned margin. A NaN bound keeps its brick
(NaN compares false), so a NaN field is evaluated and reported as one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Protocol

import torch

DEFAULT_SIZES = (32, 16, 8, 4, 2)
_BOX_PAD = 1e-6


class BoundedField(Protocol):
    """A batched field that also bounds its shape logit over boxes (shd.eval.field_bounds.MoEField)."""

    def __call__(self, points: torch.Tensor) -> torch.Tensor: ...

    def combine(self, logits: torch.Tensor) -> torch.Tensor: ...

    def shape_bounds(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class Band:
    """The kept leaf bricks of B shapes: brick n belongs to shape `shape[n]` (ascending)."""

    shape: torch.Tensor  # (N,) int64
    origins: torch.Tensor  # (N, 3) int64 grid index of the brick's first point
    values: torch.Tensor  # (N, S+1, S+1, S+1) float32 shape logits
    above: torch.Tensor  # (B,) bool: some dropped brick lies wholly above the level
    boxes_bounded: int  # bound evaluations, all levels (for benchmarks)
    points: int  # grid points evaluated, all shapes (for benchmarks)

    def of(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, origins) of shape b's bricks."""
        sel = self.shape == b
        return self.values[sel], self.origins[sel]


def grid_axis(resolution: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Sample positions along one axis: `resolution` points from -0.5 to 0.5 inclusive."""
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    return torch.linspace(-0.5, 0.5, resolution, device=device, dtype=torch.float32)


def check_sizes(sizes: tuple[int, ...]) -> None:
    """Brick sizes must shrink by whole factors, so that children tile their parent."""
    if not sizes or min(sizes) < 1 or any(a % b for a, b in zip(sizes[:-1], sizes[1:], strict=False)):
        raise ValueError(f"brick sizes must be positive, each a multiple of the next, got {sizes}")


def _padded(shape: torch.Tensor, data: torch.Tensor, n_shapes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows grouped by shape (ascending) -> (B, Nmax, ...) zero-padded, and each row's slot in it."""
    counts = torch.bincount(shape, minlength=n_shapes)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(shape), device=shape.device) - starts[shape]
    n_max = int(counts.max()) if len(shape) else 0
    out = torch.zeros((n_shapes, n_max, *data.shape[1:]), dtype=data.dtype, device=data.device)
    out[shape, slot] = data
    return out, slot


def _bounds(
    field: BoundedField, shape: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, n_shapes: int, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    lo_p, slot = _padded(shape, lo, n_shapes)
    hi_p, _ = _padded(shape, hi, n_shapes)
    b_lo = torch.empty(lo_p.shape[:2], device=lo.device)
    b_hi = torch.empty_like(b_lo)
    for start in range(0, lo_p.shape[1], chunk):
        end = start + chunk
        b_lo[:, start:end], b_hi[:, start:end] = field.shape_bounds(lo_p[:, start:end], hi_p[:, start:end])
    return b_lo[shape, slot], b_hi[shape, slot]


def _offsets(n: int, device: torch.device) -> torch.Tensor:
    return torch.tensor(list(product(range(n), repeat=3)), dtype=torch.int64, device=device)


@torch.inference_mode()
def evaluate_band(
    field: BoundedField,
    n_shapes: int,
    resolution: int,
    level: float,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
) -> Band:
    """The leaf bricks that may hold the level set, with the field's shape logits at their points."""
    check_sizes(sizes)
    device = torch.device(device)
    axis = grid_axis(resolution, device)
    last = resolution - 1  # cells per axis, and the last point's index
    coords = _offsets(math.ceil(last / sizes[0]), device)
    shape = torch.arange(n_shapes, device=device).repeat_interleave(len(coords))
    coords = coords.repeat(n_shapes, 1)
    above = torch.zeros(n_shapes, dtype=torch.bool, device=device)
    bounded = 0
    for i, size in enumerate(sizes):
        if i:
            f = sizes[i - 1] // size
            coords = (coords.unsqueeze(1) * f + _offsets(f, device)).reshape(-1, 3)
            shape = shape.repeat_interleave(f**3)
            inside_grid = (coords * size < last).all(dim=1)
            coords, shape = coords[inside_grid], shape[inside_grid]
        first = coords * size
        # widened by far more than linspace's rounding, so each box surely holds its points
        lo, hi = axis[first] - _BOX_PAD, axis[(first + size).clamp(max=last)] + _BOX_PAD
        b_lo, b_hi = _bounds(field, shape, lo, hi, n_shapes, max(1, chunk_points // 8))
        bounded += len(coords)
        is_above = b_lo > level
        above[shape[is_above]] = True
        keep = ~(is_above | (b_hi <= level))
        coords, shape = coords[keep], shape[keep]
    s = sizes[-1]
    points = (coords.unsqueeze(1) * s + _offsets(s + 1, device)).clamp(max=last)  # (N, (S+1)^3, 3)
    # bricks share their face points: evaluate each grid point once
    r = resolution
    keys = ((shape.unsqueeze(1) * r + points[..., 0]) * r + points[..., 1]) * r + points[..., 2]
    unique, inverse = torch.unique(keys, return_inverse=True)  # sorted, hence grouped by shape
    u_shape = unique // r**3
    u_points = torch.stack((unique // r**2 % r, unique // r % r, unique % r), dim=-1)
    padded, slot = _padded(u_shape, axis[u_points], n_shapes)  # (B, Pmax, 3)
    logits = torch.empty(padded.shape[:2], device=device)
    for start in range(0, padded.shape[1], chunk_points):
        chunk = padded[:, start : start + chunk_points].contiguous()
        out = field(chunk)
        if out.ndim != 3 or out.shape[:2] != chunk.shape[:2]:
            raise ValueError(
                f"field returned shape {tuple(out.shape)} for points {tuple(chunk.shape)}; expected (B, P, E)"
            )
        logits[:, start : start + chunk.shape[1]] = field.combine(out).float()
    values = logits[u_shape, slot][inverse].view(-1, s + 1, s + 1, s + 1)
    evaluated = len(unique)
    return Band(
        shape=shape, origins=coords * s, values=values, above=above, boxes_bounded=bounded, points=evaluated
    )
