"""The procedural dataset: seeded split assignment and the shapes of every category, validated up front."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator

import numpy as np

from shd.data.procedural.assembly import generate_shape, validate_generation_args
from shd.data.shape import SPLITS, PreparedShape
from shd.errors import InputError

_SPLIT_SALT = 0x5EED  # keeps the split shuffle stream apart from the per-shape design streams


def _validate_ratios(split_ratios: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(split_ratios) - set(SPLITS))
    if unknown:
        raise InputError("split_ratios", f"unknown split(s) {unknown}; expected keys among {list(SPLITS)}")
    ratios = {k: float(split_ratios.get(k, 0.0)) for k in SPLITS}
    if any(not math.isfinite(r) or r < 0 for r in ratios.values()):
        raise InputError("split_ratios", f"ratios must be finite and >= 0, got {split_ratios}")
    if abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise InputError("split_ratios", f"ratios must sum to 1, got {sum(ratios.values()):.6g}")
    return ratios


def _split_sizes(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding; then every split with a positive ratio gets >= 1 shape if n allows."""
    exact = {k: n * r for k, r in ratios.items()}
    sizes = {k: int(math.floor(v)) for k, v in exact.items()}
    by_remainder = sorted(SPLITS, key=lambda k: (-(exact[k] - sizes[k]), SPLITS.index(k)))
    for k in by_remainder[: n - sum(sizes.values())]:
        sizes[k] += 1
    wanted = [k for k in SPLITS if ratios[k] > 0]
    if n >= len(wanted):
        for k in wanted:
            if sizes[k] == 0:
                donor = max(SPLITS, key=lambda j: sizes[j])
                sizes[donor] -= 1
                sizes[k] += 1
    return sizes


def exact_split_sizes(n: int, split_sizes: dict[str, int], where: str = "split_sizes") -> dict[str, int]:
    """Exact shapes per split (e.g. the reference's 3,237 / 202 / 606), checked against the count."""
    unknown = sorted(set(split_sizes) - set(SPLITS))
    if unknown:
        raise InputError(where, f"unknown split(s) {unknown}; expected keys among {list(SPLITS)}")
    sizes = {k: split_sizes.get(k, 0) for k in SPLITS}
    if any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0 for v in sizes.values()):
        raise InputError(where, f"expected non-negative integers, got {split_sizes}")
    if sum(sizes.values()) != n:
        raise InputError(where, f"sizes {sizes} sum to {sum(sizes.values())}, but the count is {n}")
    return {k: int(v) for k, v in sizes.items()}


def assign_splits(
    category: str,
    n: int,
    seed: int,
    split_ratios: dict[str, float],
    split_sizes: dict[str, int] | None = None,
) -> list[str]:
    """Split of each index 0..n-1: a seeded shuffle of the indices cut by the ratios, or by `split_sizes`
    (exact shapes per split, summing to n) when given."""
    if split_sizes is not None:
        sizes = exact_split_sizes(n, split_sizes)
    else:
        sizes = _split_sizes(n, _validate_ratios(split_ratios))
    order = np.random.default_rng([seed, zlib.crc32(category.encode("utf-8")), _SPLIT_SALT]).permutation(n)
    out = [""] * n
    start = 0
    for k in SPLITS:
        for idx in order[start : start + sizes[k]]:
            out[int(idx)] = k
        start += sizes[k]
    return out


def generate_dataset(
    counts: dict[str, int],
    seed: int,
    split_ratios: dict[str, float],
    split_sizes: dict[str, int] | None = None,
) -> Iterator[PreparedShape]:
    """Yield `counts[category]` shapes per category with deterministic split assignment (by the ratios, or
    exactly `split_sizes` shapes per split of each category).

    Arguments are all validated before the first shape is generated, so a bad call fails fast.
    """
    ratios = _validate_ratios(split_ratios)
    plan: list[tuple[str, list[str]]] = []
    for category, count in counts.items():
        name = validate_generation_args(category, 0, seed)
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise InputError(f"counts['{category}']", f"expected a non-negative integer, got {count!r}")
        plan.append((name, assign_splits(name, int(count), int(seed), ratios, split_sizes)))
    for name, splits in plan:
        for index, split in enumerate(splits):
            yield generate_shape(name, index, seed, split)
