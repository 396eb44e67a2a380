"""Normalization shared by every data source (REFERENCE.md: centre, then scale into [-0.475, 0.475]^3)."""

from __future__ import annotations

import numpy as np

HALF_EXTENT = 0.475  # 0.5 * 0.95: shapes fill 95% of the [-0.5, 0.5]^3 sampling cube
CENTER_MODES = ("vertex_mean", "bbox")


def normalization(
    vertices: np.ndarray, center: str = "vertex_mean", half_extent: float = HALF_EXTENT
) -> tuple[np.ndarray, float]:
    """Return (centre, scale) so that `(v - centre) * scale` fits in [-half_extent, half_extent]^3.

    `vertex_mean` is the reference method's centring; `bbox` centres the bounding box, which does
    not depend on how finely a surface is tessellated.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"expected (N, 3) vertices with N > 0, got shape {v.shape}")
    if center == "vertex_mean":
        c = v.mean(axis=0)
    elif center == "bbox":
        c = 0.5 * (v.min(axis=0) + v.max(axis=0))
    else:
        raise ValueError(f"center must be one of {CENTER_MODES}, got {center!r}")
    extent = float(np.abs(v - c).max())
    if not np.isfinite(extent) or extent <= 0:
        raise ValueError("degenerate geometry: zero or non-finite extent")
    return c, half_extent / extent


def apply_normalization(points: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    return (np.asarray(points, dtype=np.float64) - centre) * scale
