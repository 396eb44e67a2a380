"""Generation metrics of record (REFERENCE.md): MMD, COV, 1-NNA on Chamfer distance; per part; novelty.

Every report is a JSON-ready dict that names its normalization and says how many clouds were used and
how many were skipped (NaN or degenerate clouds are skipped and counted, never a crash).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch

from shd.eval.chamfer import chamfer_matrix
from shd.eval.palette import part_name
from shd.eval.pointclouds import check_normalization, normalize


def n_to_generate(n_reference: int, factor: float = 1.1) -> int:
    """How many shapes to generate for `n_reference` references (REFERENCE.md: 1.1x, then clipped), so
    that a few empty meshes still leave as many usable samples as references."""
    return int(math.ceil(n_reference * factor))


def mmd_cov(d_gen_ref: np.ndarray) -> tuple[float, float]:
    """MMD = mean over references of the min CD to any generated cloud; COV = fraction of references
    that are the nearest reference of at least one generated cloud. Rows: generated, columns: references."""
    g, r = d_gen_ref.shape
    if g == 0 or r == 0:
        return float("nan"), float("nan")
    mmd = float(d_gen_ref.min(axis=0).mean())
    cov = len(np.unique(d_gen_ref.argmin(axis=1))) / r
    return mmd, cov


def one_nna(d_gen_gen: np.ndarray, d_gen_ref: np.ndarray, d_ref_ref: np.ndarray) -> dict[str, float]:
    """Leave-one-out 1-nearest-neighbour accuracy over generated + reference clouds (0.5 is ideal).

    Also the accuracy on each side: generated clouds whose nearest other cloud is generated, and the same
    for references.
    """
    g, r = d_gen_ref.shape
    if g + r < 2 or g == 0 or r == 0:
        return {"1-nna": float("nan"), "1-nna_generated": float("nan"), "1-nna_reference": float("nan")}
    full = np.block([[d_gen_gen, d_gen_ref], [d_gen_ref.T, d_ref_ref]]).astype(np.float64)
    np.fill_diagonal(full, np.inf)
    is_gen = np.r_[np.ones(g, bool), np.zeros(r, bool)]
    correct = is_gen[full.argmin(axis=1)] == is_gen
    return {
        "1-nna": float(correct.mean()),
        "1-nna_generated": float(correct[:g].mean()),
        "1-nna_reference": float(correct[g:].mean()),
    }


NNA_RESAMPLES = 1000  # bootstrap resamples of the 1-NNA interval
NNA_LEVEL = 0.95
_NEAR_COLUMNS = 64  # a resampled item's nearest kept neighbour is nearly always among its 64 nearest


def bootstrap_draws(g: int, r: int, n_resamples: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded resamples with replacement: (generated positions (g,), reference positions (r,)) each."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, g, g), rng.integers(0, r, r)) for _ in range(n_resamples)]


def one_nna_resampled(
    d_gen_gen: np.ndarray,
    d_gen_ref: np.ndarray,
    d_ref_ref: np.ndarray,
    *,
    n_resamples: int = NNA_RESAMPLES,
    seed: int = 0,
) -> np.ndarray:
    """1-NNA of each bootstrap resample of both sets (generated and references drawn with replacement,
    each at its own size), from the distance matrices already computed: no cloud is compared again.

    The copies of one cloud in a resample are one sample: a cloud's nearest neighbour is the nearest
    OTHER cloud drawn (a copy at distance 0 would make every drawn-twice cloud its own neighbour and push
    1-NNA towards 1); each copy counts once in the accuracy.
    """
    g, r = d_gen_ref.shape
    if g == 0 or r == 0 or n_resamples < 1:
        return np.full(max(n_resamples, 0), np.nan)
    full = np.block([[d_gen_gen, d_gen_ref], [d_gen_ref.T, d_ref_ref]]).astype(np.float64)
    np.fill_diagonal(full, np.inf)
    n = g + r
    is_gen = np.r_[np.ones(g, bool), np.zeros(r, bool)]
    order = np.argsort(full, axis=1, kind="stable")  # each row's neighbours, nearest first (itself last)
    near = order[:, : min(n, _NEAR_COLUMNS)]
    out = np.empty(n_resamples)
    for b, (gi, ri) in enumerate(bootstrap_draws(g, r, n_resamples, seed)):
        counts = np.r_[np.bincount(gi, minlength=g), np.bincount(ri, minlength=r)]
        drawn = counts > 0
        rows = np.flatnonzero(drawn)
        hit = drawn[near[rows]] & (near[rows] != rows[:, None])
        first = hit.argmax(axis=1)
        nn = near[rows, first]
        for k in np.flatnonzero(~hit.any(axis=1)):  # rare: none of the nearest columns was drawn
            row = order[rows[k]]
            nn[k] = row[np.flatnonzero(drawn[row] & (row != rows[k]))[0]]
        correct = is_gen[nn] == is_gen[rows]
        out[b] = (counts[rows] * correct).sum() / counts.sum()
    return out


def percentile_interval(values: np.ndarray, level: float = NNA_LEVEL) -> list[float]:
    """[low, high] percentile interval holding `level` of the finite values (NaNs when there are none)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return [math.nan, math.nan]
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def one_nna_ci(
    d_gen_gen: np.ndarray,
    d_gen_ref: np.ndarray,
    d_ref_ref: np.ndarray,
    *,
    n_resamples: int = NNA_RESAMPLES,
    seed: int = 0,
    level: float = NNA_LEVEL,
) -> list[float]:
    """Bootstrap percentile interval of 1-NNA ([low, high]): how far the figure moves with which shapes
    happened to be generated and which references the split holds."""
    stats = one_nna_resampled(d_gen_gen, d_gen_ref, d_ref_ref, n_resamples=n_resamples, seed=seed)
    return percentile_interval(stats, level)


def _finite(points: np.ndarray) -> np.ndarray:
    return np.isfinite(points).all(axis=tuple(range(1, points.ndim)))  # (N,): reshape(N, -1) fails for N = 0


def _prepare(points, normalization: str) -> tuple[np.ndarray, np.ndarray]:
    """Normalized float32 clouds that are finite, and the mask of which input clouds those are."""
    p = normalize(np.asarray(points, dtype=np.float64).reshape(-1, np.shape(points)[-2], 3), normalization)
    keep = _finite(p)
    return p[keep].astype(np.float32), keep


def generation_metrics(
    generated,
    reference,
    *,
    normalization: str,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    clip_to_reference: bool = True,
    per_sample: bool = False,
    nna_resamples: int = NNA_RESAMPLES,
    seed: int = 0,
) -> dict:
    """MMD, COV and 1-NNA of generated vs reference clouds, each (N, n, 3), in the named normalization.

    REFERENCE.md generates more shapes than references (1.1x) and clips: with `clip_to_reference` the
    first len(reference) usable generated clouds are kept. `per_sample` adds, for each generated cloud
    that was used, its position in `generated` and its nearest reference (CD and position in
    `reference`), and for each reference its CD to the nearest used generated cloud (NaN for a skipped
    reference), from the matrix the metrics already need (plots, captions and the report without a
    second pass). `1-nna_ci95` is the bootstrap 95% interval of 1-NNA (`nna_resamples` seeded resamples
    of both sets from the same matrices; 0 resamples: NaN).
    """
    check_normalization(normalization)
    gen, gen_keep = _prepare(generated, normalization)
    ref, ref_keep = _prepare(reference, normalization)
    n_usable = len(gen)
    if clip_to_reference:
        gen = gen[: len(ref)]
    d_gg = chamfer_matrix(gen, device=device, backend=backend)
    d_rr = chamfer_matrix(ref, device=device, backend=backend)
    d_gr = chamfer_matrix(gen, ref, device=device, backend=backend)
    mmd, cov = mmd_cov(d_gr)
    report = {
        "normalization": normalization,
        "distance": "chamfer_l2_squared",
        "n_generated": len(gen),
        "n_reference": len(ref),
        "skipped_generated": int((~gen_keep).sum()),
        "skipped_reference": int((~ref_keep).sum()),
        "clipped_generated": n_usable - len(gen),
        "mmd": mmd,
        "cov": cov,
        **one_nna(d_gg, d_gr, d_rr),
        "1-nna_ci95": one_nna_ci(d_gg, d_gr, d_rr, n_resamples=nna_resamples, seed=seed),
        "nna_resamples": nna_resamples,
    }
    if per_sample:
        has_ref = d_gr.shape[1] > 0
        reference_cd = np.full(len(ref_keep), math.nan)
        if len(gen):
            reference_cd[ref_keep] = d_gr.min(axis=0)
        report.update(
            {
                "generated_index": np.flatnonzero(gen_keep)[: len(gen)].tolist(),
                "nearest_reference_cd": d_gr.min(axis=1).tolist() if has_ref else [math.nan] * len(gen),
                "nearest_reference_index": (
                    np.flatnonzero(ref_keep)[d_gr.argmin(axis=1)].tolist() if has_ref else [-1] * len(gen)
                ),
                "reference_nearest_cd": reference_cd.tolist(),
            }
        )
    return report


def part_clouds(points: np.ndarray, labels: np.ndarray, part: int) -> tuple[np.ndarray, np.ndarray]:
    """Points of one part from each cloud, padded to the longest: (N, L, 3) and lengths (N,)."""
    mask = np.asarray(labels) == part
    lengths = mask.sum(axis=1)
    out = np.zeros((len(points), max(int(lengths.max(initial=0)), 1), 3), np.float32)
    for i in range(len(points)):
        out[i, : lengths[i]] = points[i][mask[i]]
    return out, lengths


def part_chamfer(
    x: np.ndarray,
    x_labels: np.ndarray,
    y: np.ndarray,
    y_labels: np.ndarray,
    n_parts: int,
    part_names: Sequence[str] | None = None,
) -> dict:
    """CD between the same-labelled points of two clouds, per part (in the clouds' common frame).

    A part present on one side only is listed under `missing` with the side that lacks it; its CD is None.
    """
    values: dict[str, float | None] = {}
    missing: dict[str, str] = {}
    for p in range(n_parts):
        name = part_name(p, part_names)
        xp, yp = np.asarray(x)[np.asarray(x_labels) == p], np.asarray(y)[np.asarray(y_labels) == p]
        if len(xp) == 0 or len(yp) == 0:
            values[name] = None
            if len(xp) or len(yp):
                missing[name] = "first" if len(xp) == 0 else "second"
            continue
        values[name] = float(chamfer_matrix(xp[None], yp[None], backend="kdtree")[0, 0])
    return {"chamfer": values, "missing": missing}


def part_metrics(
    generated,
    generated_labels,
    reference,
    reference_labels,
    *,
    n_parts: int,
    part_names: Sequence[str] | None = None,
    normalization: str,
    device: torch.device | str = "cpu",
    backend: str = "auto",
) -> dict:
    """Per-part MMD and coverage: each part's points compared with the same part of the references.

    Clouds are normalized whole (a part keeps its place in the shape), then split by label. Shapes that
    lack a part are left out of that part's metrics and counted.
    """
    check_normalization(normalization)
    gen, gen_keep = _prepare(generated, normalization)
    ref, ref_keep = _prepare(reference, normalization)
    gen_labels = np.asarray(generated_labels)[gen_keep]
    ref_labels = np.asarray(reference_labels)[ref_keep]
    parts = {}
    for p in range(n_parts):
        gp, gl = part_clouds(gen, gen_labels, p)
        rp, rl = part_clouds(ref, ref_labels, p)
        gp, gl, rp, rl = gp[gl > 0], gl[gl > 0], rp[rl > 0], rl[rl > 0]
        d = chamfer_matrix(gp, rp, x_lengths=gl, y_lengths=rl, device=device, backend=backend)
        mmd, cov = mmd_cov(d)
        parts[part_name(p, part_names)] = {
            "mmd": mmd,
            "cov": cov,
            "n_generated_with_part": len(gp),
            "n_reference_with_part": len(rp),
            "generated_missing_part": len(gen) - len(gp),
            "reference_missing_part": len(ref) - len(rp),
        }
    return {
        "normalization": normalization,
        "skipped_generated": int((~gen_keep).sum()),
        "skipped_reference": int((~ref_keep).sum()),
        "parts": parts,
    }


_SPACING_CACHE: dict[tuple[str, str, str], float] = {}
_SPACING_CACHE_SIZE = 4


def train_spacing(tr: np.ndarray, normalization: str, device: torch.device | str, backend: str) -> float:
    """Median over (normalized, usable) training clouds of the CD to their nearest other training cloud.

    An N x N Chamfer matrix of the whole training set (3,237 clouds: ~10M pairs) that every generator
    scored against the same training set shares: kept for the last few training sets, keyed by a hash
    of the clouds themselves, so a table of seven rows computes it once.
    """
    key = (hashlib.sha256(np.ascontiguousarray(tr).tobytes()).hexdigest(), normalization, str(backend))
    if key not in _SPACING_CACHE:
        d_tt = chamfer_matrix(tr, device=device, backend=backend)
        np.fill_diagonal(d_tt, np.inf)
        if len(_SPACING_CACHE) >= _SPACING_CACHE_SIZE:
            _SPACING_CACHE.pop(next(iter(_SPACING_CACHE)))
        _SPACING_CACHE[key] = float(np.median(d_tt.min(axis=1)))
    return _SPACING_CACHE[key]


def novelty(
    generated,
    train,
    *,
    normalization: str,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    nearest: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Each generated cloud's CD to its nearest training cloud, against the training set's own spread.

    The yardstick is the median over training clouds of the CD to their nearest other training cloud; a
    sample closer than that to some training shape is within the training set's own spacing (likely a
    near-copy). Reported: per-sample distances and nearest indices (positions in `train`),
    their median, and the fraction below the yardstick. `nearest`: `nearest_in(generated, train, ...)`
    when the caller has it already (aligned with `generated`), so it is not computed twice.
    """
    check_normalization(normalization)
    gen, gen_keep = _prepare(generated, normalization)
    tr, tr_keep = _prepare(train, normalization)
    report = {
        "normalization": normalization,
        "n_generated": len(gen),
        "n_train": len(tr),
        "skipped_generated": int((~gen_keep).sum()),
        "skipped_train": int((~tr_keep).sum()),
    }
    if len(gen) == 0 or len(tr) < 2:
        return {**report, "train_median_nn": float("nan"), "fraction_closer_than_train_median": float("nan")}
    yardstick = train_spacing(tr, normalization, device, backend)
    if nearest is None:
        nearest = nearest_in(generated, train, normalization=normalization, device=device, backend=backend)
    if len(nearest[0]) != len(gen_keep):
        raise ValueError(f"nearest holds {len(nearest[0])} clouds, generated {len(gen_keep)}")
    nearest, index = np.asarray(nearest[0])[gen_keep], np.asarray(nearest[1])[gen_keep]
    return {
        **report,
        "train_median_nn": yardstick,
        "median_nearest_train": float(np.median(nearest)),
        "fraction_closer_than_train_median": float((nearest < yardstick).mean()),
        "nearest_train_cd": nearest.tolist(),
        "nearest_train_index": index.tolist(),
    }


def nearest_in(
    clouds, pool, *, normalization: str, device: torch.device | str = "cpu", backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """For each cloud, the CD to its nearest cloud of `pool` and that cloud's position in `pool`.

    Aligned with `clouds` as given: a skipped cloud (or an unusable pool) gets NaN and -1, so callers
    index their own lists without tracking which clouds the normalization dropped.
    """
    x, x_keep = _prepare(clouds, normalization)
    p, p_keep = _prepare(pool, normalization)
    cd, index = np.full(len(x_keep), math.nan), np.full(len(x_keep), -1, dtype=np.int64)
    if len(x) and len(p):
        d = chamfer_matrix(x, p, device=device, backend=backend)
        cd[x_keep], index[x_keep] = d.min(axis=1), np.flatnonzero(p_keep)[d.argmin(axis=1)]
    return cd, index
