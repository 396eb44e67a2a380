"""Exact point-to-triangle-mesh distances on torch tensors (chunked), for the part-label tie rule.

Inside points held by several part volumes (or none) go to the part whose surface is nearest; exact
distances (libigl's `point_mesh_squared_distance` on the CPU path, this on the device path) make both
paths pick the same part, where distances to random surface samples would disagree near ties.
"""

from __future__ import annotations

import torch

CHUNK_PAIRS = 1 << 21


def _segment_sq(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ab = b - a
    t = ((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-300)
    return (p - (a + t.clamp(0.0, 1.0)[..., None] * ab)).square().sum(-1)


def mesh_distance_sq(triangles: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N,) squared distance of each point (N, 3) to the nearest triangle of (F, 3, 3), in fp64."""
    tri = triangles.double()
    out = torch.full((len(points),), float("inf"), dtype=torch.float64, device=points.device)
    if len(tri) == 0:
        return out
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    n = torch.linalg.cross(b - a, c - a, dim=-1)
    nn = (n * n).sum(-1)
    step = max(1, CHUNK_PAIRS // len(tri))
    for s in range(0, len(points), step):
        p = points[s : s + step, None, :].double()  # (n, 1, 3) against (F, 3)
        inside = nn > 0
        for u, v in ((a, b), (b, c), (c, a)):
            inside = inside & ((torch.linalg.cross((v - u).expand_as(p - u), p - u, dim=-1) * n).sum(-1) >= 0)
        plane = ((p - a) * n).sum(-1).square() / nn.clamp_min(1e-300)
        edges = torch.minimum(torch.minimum(_segment_sq(p, a, b), _segment_sq(p, b, c)), _segment_sq(p, c, a))
        out[s : s + step] = torch.where(inside, plane, edges).amin(dim=1)
    return out
