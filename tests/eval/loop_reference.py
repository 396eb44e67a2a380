"""Plain loops written from the REFERENCE.md formulas, float64, as the yardstick for the fast code."""

from __future__ import annotations

import numpy as np


def chamfer(x: np.ndarray, y: np.ndarray) -> float:
    """mean_x min_y |x-y|^2 + mean_y min_x |x-y|^2, one point at a time."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x_to_y = np.mean([min(float(((p - q) ** 2).sum()) for q in y) for p in x])
    y_to_x = np.mean([min(float(((q - p) ** 2).sum()) for p in x) for q in y])
    return float(x_to_y + y_to_x)


def chamfer_matrix(xs, ys) -> np.ndarray:
    return np.array([[chamfer(x, y) for y in ys] for x in xs])


def mmd_cov(d_gen_ref: np.ndarray) -> tuple[float, float]:
    n_gen, n_ref = d_gen_ref.shape
    mmd = np.mean([min(d_gen_ref[g, r] for g in range(n_gen)) for r in range(n_ref)])
    covered = {min(range(n_ref), key=lambda r: d_gen_ref[g, r]) for g in range(n_gen)}
    return float(mmd), len(covered) / n_ref


def one_nna(clouds_gen, clouds_ref) -> float:
    clouds = list(clouds_gen) + list(clouds_ref)
    is_gen = [True] * len(clouds_gen) + [False] * len(clouds_ref)
    correct = 0
    for i in range(len(clouds)):
        others = [j for j in range(len(clouds)) if j != i]
        nearest = min(others, key=lambda j: chamfer(clouds[i], clouds[j]))
        correct += is_gen[nearest] == is_gen[i]
    return correct / len(clouds)
