"""Analytic part-labelled shapes (boxes, elliptic cylinders, ellipsoids) sampled like the reference.

For tests and benchmarks of the fields layer, which must not depend on the data stage: batched torch,
so thousands of shapes are generated on a GPU in seconds. Inside tests are exact; a point's label is
the part of the first primitive (in template order) that holds it. Sampling follows the reference:
surface points of the union jittered with Gaussian sigma, plus uniform points in [-0.5, 0.5]^3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

ABSENT, BOX, CYL_X, CYL_Y, CYL_Z, ELLIPSOID = -1, 0, 1, 2, 3, 4
PARTS = {"airplane": ["body", "wing", "tail", "engine"], "chair": ["back", "seat", "leg", "arm"]}
HALF_EXTENT = 0.475


@dataclass
class Primitives:
    """K primitives for each of B shapes: kind (B, K), centre and half extents (B, K, 3), part (K,)."""

    kind: torch.Tensor
    center: torch.Tensor
    half: torch.Tensor
    part: torch.Tensor


def _u(gen: torch.Generator, n: int, lo: float, hi: float, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def airplane(n: int, gen: torch.Generator, device: torch.device) -> Primitives:
    """Body, wing, horizontal + vertical tail, two engines (absent in 20% of shapes)."""
    u = lambda lo, hi: _u(gen, n, lo, hi, device)  # noqa: E731
    z = torch.zeros(n, device=device)
    length, radius = u(0.35, 0.48), u(0.04, 0.08)
    body_kind = torch.randint(0, 3, (n,), generator=gen, device=device)
    body_kind = torch.tensor([CYL_X, ELLIPSOID, BOX], device=device)[body_kind]
    wx, wy, thick, span = u(-0.08, 0.08), u(-0.5, 0.3) * radius, u(0.01, 0.025), u(0.3, 0.48)
    chord = u(0.05, 0.12)
    tx, tchord = -length + u(0.03, 0.07), u(0.03, 0.06)
    vh = u(0.04, 0.1)
    er, ez, elen = u(0.02, 0.04), u(0.3, 0.65) * span, u(0.04, 0.08)
    ey, ex = wy - thick - er, wx + u(-0.02, 0.04)
    engine_kind = torch.where(torch.rand(n, generator=gen, device=device) < 0.2, ABSENT, CYL_X)
    kind = torch.stack([body_kind, *(torch.full((n,), BOX, device=device),) * 3, engine_kind, engine_kind], 1)
    center = torch.stack(
        [
            torch.stack([z, z, z], 1),
            torch.stack([wx, wy, z], 1),
            torch.stack([tx, z, z], 1),
            torch.stack([tx, radius + vh, z], 1),
            torch.stack([ex, ey, ez], 1),
            torch.stack([ex, ey, -ez], 1),
        ],
        1,
    )
    half = torch.stack(
        [
            torch.stack([length, radius, radius], 1),
            torch.stack([chord, thick, span], 1),
            torch.stack([tchord, u(0.006, 0.012), u(0.08, 0.18)], 1),
            torch.stack([tchord, vh, u(0.006, 0.012)], 1),
            torch.stack([elen, er, er], 1),
            torch.stack([elen, er, er], 1),
        ],
        1,
    )
    return Primitives(kind, center, half, torch.tensor([0, 1, 2, 2, 3, 3], device=device))


def chair(n: int, gen: torch.Generator, device: torch.device) -> Primitives:
    """Seat, back, four legs (boxes or cylinders), two arms (present in half of the shapes)."""
    u = lambda lo, hi: _u(gen, n, lo, hi, device)  # noqa: E731
    z = torch.zeros(n, device=device)
    sw, sd, st, sy = u(0.2, 0.3), u(0.18, 0.28), u(0.02, 0.04), u(-0.05, 0.05)
    bh, bt = u(0.15, 0.3), u(0.015, 0.03)
    lh, lr = u(0.15, 0.25), u(0.015, 0.03)
    leg_kind = torch.where(torch.rand(n, generator=gen, device=device) < 0.5, BOX, CYL_Y)
    arm_kind = torch.where(torch.rand(n, generator=gen, device=device) < 0.5, ABSENT, BOX)
    ah, aw = u(0.06, 0.12), u(0.015, 0.03)
    legs_c = [
        torch.stack([sx * (sw - lr), sy - st - lh, sz * (sd - lr)], 1) for sx in (-1, 1) for sz in (-1, 1)
    ]
    arms_c = [torch.stack([sx * (sw - aw), sy + st + ah, z], 1) for sx in (-1, 1)]
    kind = torch.stack([torch.full((n,), BOX, device=device)] * 2 + [leg_kind] * 4 + [arm_kind] * 2, 1)
    center = torch.stack(
        [torch.stack([z, sy, z], 1), torch.stack([z, sy + st + bh, -sd + bt], 1), *legs_c, *arms_c], 1
    )
    half = torch.stack(
        [torch.stack([sw, st, sd], 1), torch.stack([sw, bh, bt], 1)]
        + [torch.stack([lr, lh, lr], 1)] * 4
        + [torch.stack([aw, ah, sd * 0.8], 1)] * 2,
        1,
    )
    return Primitives(kind, center, half, torch.tensor([1, 0, 2, 2, 2, 2, 3, 3], device=device))


TEMPLATES = {"airplane": airplane, "chair": chair}


def normalized(prims: Primitives) -> Primitives:
    """Centre each shape's bounding box and scale its largest half extent to 0.475 (reference)."""
    present = (prims.kind != ABSENT).unsqueeze(-1)
    inf = torch.full_like(prims.center, math.inf)
    lo = torch.where(present, prims.center - prims.half, inf).amin(1)
    hi = torch.where(present, prims.center + prims.half, -inf).amax(1)
    mid = (lo + hi) / 2
    scale = HALF_EXTENT / ((hi - lo) / 2).amax(-1)
    center = (prims.center - mid.unsqueeze(1)) * scale[:, None, None]
    return Primitives(prims.kind, center, prims.half * scale[:, None, None], prims.part)


# per kind: which axes are "round" (a primitive is inside where the round axes' squared sum <= 1 and
# every other axis |d| <= 1): box none, cylinders the two cross axes, ellipsoid all three
_ROUND = [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0], [1, 1, 1]]
# cylinders are drawn along x, then this swap moves x onto their axis
_SWAP = [[0, 1, 2], [0, 1, 2], [1, 0, 2], [2, 1, 0], [0, 1, 2]]


def _inside_one(kind: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """d (B, N, 3) in the primitive's unit frame; kind (B,) -> inside (B, N)."""
    rnd = torch.tensor(_ROUND, dtype=d.dtype, device=d.device)[kind.clamp(min=0)].unsqueeze(1)
    inside = ((d * d * rnd).sum(-1) <= 1) & ((d.abs() * (1 - rnd)).amax(-1) <= 1)
    return inside & (kind != ABSENT).unsqueeze(1)


def occupancy_labels(prims: Primitives, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """points (B, N, 3) -> occupancy (B, N) bool, labels (B, N) int8 (-1 outside)."""
    labels = torch.full(points.shape[:2], -1, dtype=torch.int8, device=points.device)
    for k in reversed(range(prims.kind.shape[1])):  # earlier primitives win
        d = (points - prims.center[:, k, None]) / prims.half[:, k, None]
        labels = torch.where(_inside_one(prims.kind[:, k], d), prims.part[k].to(torch.int8), labels)
    return labels >= 0, labels


def _areas(prims: Primitives) -> torch.Tensor:
    hx, hy, hz = prims.half.unbind(-1)
    box = 8 * (hx * hy + hy * hz + hx * hz)
    p = 1.6
    ell = 4 * math.pi * (((hx * hy) ** p + (hx * hz) ** p + (hy * hz) ** p) / 3) ** (1 / p)
    area = torch.where(prims.kind == BOX, box, ell)
    for a, code in enumerate((CYL_X, CYL_Y, CYL_Z)):
        h = prims.half[..., a]
        b, c = [prims.half[..., i] for i in range(3) if i != a]
        cyl = 2 * math.pi * torch.sqrt((b * b + c * c) / 2) * 2 * h + 2 * math.pi * b * c
        area = torch.where(prims.kind == code, cyl, area)
    return torch.where(prims.kind == ABSENT, torch.zeros_like(area), area)


def _unit_surface(kind: torch.Tensor, half: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random points on each unit primitive's surface, kind (B, M), half (B, M, 3) -> (B, M, 3)."""
    r = torch.rand(*kind.shape, 5, generator=gen, device=kind.device)
    sign = torch.where(r[..., 0] < 0.5, -1.0, 1.0).unsqueeze(-1)
    swap = torch.tensor(_SWAP, device=kind.device)[kind.clamp(min=0)]
    h = half.gather(-1, swap)  # cylinder axis first
    # box: a face picked by area, uniform on it
    face_w = torch.stack([h[..., 1] * h[..., 2], h[..., 0] * h[..., 2], h[..., 0] * h[..., 1]], -1).cumsum(-1)
    axis = (face_w < r[..., 1:2] * face_w[..., 2:]).sum(-1, keepdim=True)
    box = torch.rand(*kind.shape, 3, generator=gen, device=kind.device) * 2 - 1
    box = torch.where(torch.arange(3, device=kind.device) == axis, sign, box)
    # cylinder along x: side or cap by area
    side = torch.sqrt((h[..., 1] ** 2 + h[..., 2] ** 2) / 2) * 2 * h[..., 0]
    on_side = r[..., 2] < side / (side + h[..., 1] * h[..., 2])
    rad = torch.where(on_side, 1.0, r[..., 3].sqrt())
    theta = r[..., 4] * 2 * math.pi
    cyl = torch.stack(
        [torch.where(on_side, r[..., 3] * 2 - 1, sign[..., 0]), rad * theta.cos(), rad * theta.sin()], -1
    )
    ell = torch.randn(*kind.shape, 3, generator=gen, device=kind.device)
    ell = ell / ell.norm(dim=-1, keepdim=True)
    k = kind.unsqueeze(-1)
    out = torch.where(k == BOX, box, torch.where(k == ELLIPSOID, ell, cyl))
    return out.gather(-1, swap)


def sample_surface(prims: Primitives, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n area-weighted points on the surface of each union (B, n, 3) and their part labels (B, n)."""
    m = 3 * n
    src = torch.multinomial(_areas(prims), m, replacement=True, generator=gen)  # (B, m)
    kind = prims.kind.gather(1, src)
    center = prims.center.gather(1, src.unsqueeze(-1).expand(-1, -1, 3))
    half = prims.half.gather(1, src.unsqueeze(-1).expand(-1, -1, 3))
    pts = center + half * _unit_surface(kind, half, gen)
    covered = torch.zeros(pts.shape[:2], dtype=torch.bool, device=pts.device)
    for k in range(prims.kind.shape[1]):
        d = (pts - prims.center[:, k, None]) / prims.half[:, k, None]
        strictly = _inside_one(prims.kind[:, k], d * (1 + 1e-4))
        covered |= strictly & (src != k)
    key = torch.rand(pts.shape[:2], generator=gen, device=pts.device) + covered.float() * 2
    pick = key.topk(n, dim=1, largest=False).indices
    return pts.gather(1, pick.unsqueeze(-1).expand(-1, -1, 3)), prims.part[src.gather(1, pick)].to(torch.int8)


def _queries(
    prims: Primitives, n_near: int, n_uniform: int, sigma: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    surf, _ = sample_surface(prims, n_near, gen)
    dev, b = surf.device, surf.shape[0]
    near = surf + sigma * torch.randn(surf.shape, generator=gen, device=dev)
    uniform = torch.rand(b, n_uniform, 3, generator=gen, device=dev) - 0.5
    pts = torch.cat([near, uniform], 1)
    occ, lab = occupancy_labels(prims, pts)
    return pts, occ.to(torch.uint8), lab


def sample_shapes(
    category: str,
    n_shapes: int,
    seed: int = 0,
    n_near: int = 100_000,
    n_uniform: int = 100_000,
    n_eval_near: int = 10_000,
    n_eval_uniform: int = 10_000,
    n_surface: int = 2048,
    sigma: float = 0.01,
    device: str | torch.device = "cpu",
    group: int = 64,
) -> dict[str, torch.Tensor]:
    """Occupancy samples of `n_shapes` random shapes in the sample-set array format (torch tensors)."""
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {}
    for start in range(0, n_shapes, group):
        prims = normalized(TEMPLATES[category](min(group, n_shapes - start), gen, device))
        arrays = dict(
            zip(
                ("points", "occupancy", "labels"), _queries(prims, n_near, n_uniform, sigma, gen), strict=True
            )
        )
        arrays.update(
            zip(
                ("eval_points", "eval_occupancy", "eval_labels"),
                _queries(prims, n_eval_near, n_eval_uniform, sigma, gen),
                strict=True,
            )
        )
        arrays["surface"], arrays["surface_labels"] = sample_surface(prims, n_surface, gen)
        for k, v in arrays.items():
            out.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in out.items()}
