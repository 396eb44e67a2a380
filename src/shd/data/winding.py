"""Generalized winding numbers on torch tensors, batched over jobs (query set x triangle mesh).

The same solid-angle sum as libigl's exact `winding_number` (van Oosterom-Strackee per triangle,
summed, / 4 pi). Two backends with the same math:
- `triton` (CUDA, or Triton's interpreter in tests): fp32 tiles, with the points where fp32 may pick
  the wrong side (almost on a triangle's plane, or next to a vertex) recomputed in fp64 by `torch`;
- `torch`: chunked over points, in fp64 by default (the CPU fallback, and the fp64 refinement).
Both agree with libigl except for points within ~1e-15 of the surface.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

# (points x triangles) pairs per torch chunk: bounds the fallback's memory (~10 temporaries of this size).
CHUNK_PAIRS = 1 << 22
BACKENDS = ("auto", "triton", "torch")


def triangles_of(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F, 3, 3) corner coordinates of each face."""
    return vertices[faces.long()]


def winding_number_torch(
    triangles: torch.Tensor, queries: torch.Tensor, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """(N,) winding numbers of `queries` (N, 3) w.r.t. the triangles (F, 3, 3), chunked over points."""
    tri = triangles.to(dtype)
    q = queries.to(dtype)
    out = torch.zeros(len(q), dtype=dtype, device=q.device)
    if len(tri) == 0 or len(q) == 0:
        return out
    corners = tri.reshape(-1, 9).t()  # 9 rows of (F,): v0 x y z, v1 x y z, v2 x y z (componentwise: fast)
    step = max(1, CHUNK_PAIRS // len(tri))
    for s in range(0, len(q), step):
        qx, qy, qz = (q[s : s + step, k, None] for k in range(3))
        ax, ay, az = corners[0] - qx, corners[1] - qy, corners[2] - qz
        bx, by, bz = corners[3] - qx, corners[4] - qy, corners[5] - qz
        cx, cy, cz = corners[6] - qx, corners[7] - qy, corners[8] - qz
        la = (ax * ax + ay * ay + az * az).sqrt()
        lb = (bx * bx + by * by + bz * bz).sqrt()
        lc = (cx * cx + cy * cy + cz * cz).sqrt()
        det = ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)
        den = la * lb * lc + (ax * bx + ay * by + az * bz) * lc + (bx * cx + by * cy + bz * cz) * la
        den += (cx * ax + cy * ay + cz * az) * lb
        out[s : s + step] = torch.atan2(det, den).sum(dim=1) / (2 * math.pi)
    return out


def _triton_available(device: torch.device) -> bool:
    import os

    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def winding_numbers(
    jobs: Sequence[tuple[torch.Tensor, torch.Tensor]], backend: str = "auto"
) -> list[torch.Tensor]:
    """Winding number of each job's queries (n_i, 3) w.r.t. its triangles (F_i, 3, 3), all on one device.

    `auto` runs Triton on CUDA when it is importable, else the fp64 torch path; results are fp64.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not jobs:
        return []
    device = jobs[0][0].device
    use_triton = backend == "triton" or (
        backend == "auto" and device.type == "cuda" and _triton_available(device)
    )
    if not use_triton:
        return [winding_number_torch(t, q) for q, t in jobs]
    from shd.data._winding_triton import winding_numbers_triton

    q_sizes = [len(q) for q, _ in jobs]
    t_sizes = [len(t) for _, t in jobs]
    q_off = [0, *torch.tensor(q_sizes).cumsum(0).tolist()]
    t_off = [0, *torch.tensor(t_sizes).cumsum(0).tolist()]
    table = torch.tensor(
        [[q_off[i], q_off[i + 1], t_off[i], t_off[i + 1]] for i in range(len(jobs))], dtype=torch.int64
    )
    queries = torch.cat([q.float() for q, _ in jobs]).reshape(-1, 3)
    triangles = torch.cat([t.float().reshape(-1, 3, 3) for _, t in jobs])
    w32, risky = winding_numbers_triton(queries, triangles, table)
    w = w32.double()
    out = []
    for i, (q, t) in enumerate(jobs):
        wi = w[q_off[i] : q_off[i + 1]]
        # fp32 round-off (~1e-6) cannot move a point across 0.5 unless it is this close, or flagged
        redo = torch.nonzero(risky[q_off[i] : q_off[i + 1]] | ((wi - 0.5).abs() < 1e-3)).flatten()
        if len(redo):
            wi[redo] = winding_number_torch(t, q[redo])
        out.append(wi)
    return out
