"""Surface point clouds from meshes, with part labels, and the two normalizations metrics are reported in.

`unit_std` is the weight-space reference's, exactly as its test-split code computes it: each cloud
centred on its mean point and divided by the unbiased std (torch's default) of all 3N coordinates of the
cloud AS GIVEN, before centring. That scale is not the std of the centred coordinates: it also counts
how far the centroid's three coordinates differ from each other, so it differs whenever the centroid is
off the x = y = z line (0.2-6% on real airplanes, see BENCHMARKS.md `normalization`). `bbox` is the
point-cloud papers' (LION: each cloud's bounding box centred and scaled so its longest side is 1,
inside [-0.5, 0.5]). Numbers under one are not comparable with the other, so every report names it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from shd.errors import InputError
from shd.eval.meshing import MeshResult

NORMALIZATIONS = ("unit_std", "bbox")
N_POINTS = 2048  # REFERENCE.md: 2,048 points per mesh


@dataclass
class CloudSet:
    """Clouds sampled from the meshes that could be sampled, and what happened to the others."""

    points: np.ndarray  # (N, n, 3) float32, not normalized
    labels: np.ndarray  # (N, n) int64 part label of each point
    index: np.ndarray  # (N,) position of each cloud's mesh in the input list
    skipped: dict[str, int] = field(default_factory=dict)  # mesh status (or "zero_area") -> count


def sample_surface(mesh: MeshResult, n_points: int = N_POINTS, seed: int | Sequence[int] = 0):
    """Area-weighted uniform points on the mesh surface and each point's face label.

    Returns (points (n, 3) float64, labels (n,) int64), or None when the mesh has no area to sample.
    """
    tri = mesh.vertices[mesh.faces].astype(np.float64)  # (F, 3, 3)
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = areas.sum() if len(areas) else 0.0
    if not np.isfinite(total) or total <= 0:
        return None
    rng = np.random.default_rng(seed)
    face = np.searchsorted(np.cumsum(areas), rng.random(n_points) * total, side="right")
    face = np.minimum(face, len(areas) - 1)
    r1 = np.sqrt(rng.random(n_points))[:, None]
    r2 = rng.random(n_points)[:, None]
    t = tri[face]
    points = (1 - r1) * t[:, 0] + r1 * (1 - r2) * t[:, 1] + r1 * r2 * t[:, 2]
    return points, mesh.face_labels[face].astype(np.int64)


def sample_clouds(meshes: Sequence[MeshResult], n_points: int = N_POINTS, seed: int = 0) -> CloudSet:
    """One cloud per usable mesh; mesh i is seeded by (seed, i), so a cloud does not depend on the others."""
    points, labels, index = [], [], []
    skipped: Counter[str] = Counter()
    for i, mesh in enumerate(meshes):
        sampled = sample_surface(mesh, n_points, (seed, i)) if mesh.ok else None
        if sampled is None:
            skipped[mesh.status if not mesh.ok else "zero_area"] += 1
            continue
        points.append(sampled[0])
        labels.append(sampled[1])
        index.append(i)
    return CloudSet(
        points=np.asarray(points, np.float32).reshape(len(index), n_points, 3),
        labels=np.asarray(labels, np.int64).reshape(len(index), n_points),
        index=np.asarray(index, np.int64),
        skipped=dict(skipped),
    )


def check_normalization(name: str) -> str:
    if name not in NORMALIZATIONS:
        raise InputError(f"normalization '{name}'", f"expected one of {', '.join(NORMALIZATIONS)}")
    return name


def normalize(points: np.ndarray, method: str) -> np.ndarray:
    """Normalize each cloud of (n, 3) or (N, n, 3) points; a degenerate cloud (non-finite, or all its
    points equal) comes back all NaN.

    NaN marks it for the metrics to skip and count rather than divide by zero silently.
    """
    check_normalization(method)
    p = np.asarray(points, dtype=np.float64)
    single = p.ndim == 2
    if single:
        p = p[None]
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"expected (n, 3) or (N, n, 3) points, got shape {np.shape(points)}")
    if method == "unit_std":
        # the scale is taken from the cloud as given (not centred), as the reference's test code does
        scale = p.reshape(len(p), p.shape[1] * 3).std(axis=1, ddof=1)  # -1 fails for 0 clouds
        spread = (p.max(axis=1) - p.min(axis=1)).max(axis=1)  # 0: all points equal, a point, not a shape
        good = np.isfinite(scale) & (scale > 0) & (spread > 0)
        out = np.full_like(p, np.nan)
        out[good] = (p[good] - p[good].mean(axis=1, keepdims=True)) / scale[good, None, None]
    else:
        lo, hi = p.min(axis=1, keepdims=True), p.max(axis=1, keepdims=True)
        scale = (hi - lo).max(axis=2, keepdims=True)
        good = (np.isfinite(scale) & (scale > 0))[:, 0, 0]
        out = np.full_like(p, np.nan)
        # shift to [0, extent] first, so the longest side maps to [-0.5, 0.5] exactly, without rounding out
        out[good] = (p[good] - lo[good]) / scale[good] - 0.5 * (hi[good] - lo[good]) / scale[good]
    return out[0] if single else out
