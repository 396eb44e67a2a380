"""The quality table (issue 20): every generator and yardstick scored on the same test split, one row each.

Rows: the diffusion model under several samplers, the single-MLP baseline, the training set used as
the generator (an oracle memorizer) and two memorization baselines after Zeng et al. 2025: training
weights plus Gaussian noise, meshed and scored exactly like samples. Each row is MMD, COV, 1-NNA with
its bootstrap 95% interval, the empty count and novelty (median CD of the scored shapes to their
nearest training shape); each row also keeps, per scored shape, its nearest-training and
nearest-test CD: the report's novelty-vs-quality scatter. This module scores what it is given; which
weights to score (sampling, training the baseline) is decided above it (`shd.diffusion.quality_table`).

Noise levels are in the diffusion model's normalized weight space (noise = sigma x the model's
normalization std of each scalar: the per-block std under `block` normalization). Defaults 0.1 and
0.3: under the reference schedule (500 linear betas 1e-4..2e-2) that is a training vector noised
forward to about t = 20 and t = 63 (noise-to-signal sqrt((1 - abar) / abar) = sigma), i.e. the last
4% and 13% of the chain that a sampler's final steps undo; SDEdit harmonization (t = 0.2 T) starts
from sigma ~0.5. A generator that only copies training shapes and stops short of the end of the
chain scores like these rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from shd.errors import InputError
from shd.eval.config import EvaluateConfig
from shd.eval.scoring import Clouds, evaluate_weight_vectors, train_as_generator_scored
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout
from shd.jsonio import json_ready

TABLE_FORMAT = "shd-quality-table/1"
ROW_NAMES = (
    "moe_ddpm500",
    "moe_ddim50",
    "moe_ddim10",
    "single",
    "train_as_generator",
    "noise_low",
    "noise_high",
)
NOISE_LEVELS = {"noise_low": 0.1, "noise_high": 0.3}
ROW_KEYS = ("name", "mmd", "cov", "nna", "nna_ci95", "n_generated", "n_empty", "novelty_median_cd")


def noisy_weights(flat: torch.Tensor, std: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Training weights plus N(0, (sigma * std)^2) per scalar: sigma of noise in the space where the
    diffusion model sees each scalar divided by `std` (its normalizer's (D,) std). Seeded, on the CPU."""
    if sigma < 0 or not math.isfinite(sigma):
        raise InputError("noise level", f"expected a finite sigma >= 0, got {sigma!r}")
    if std.shape != flat.shape[1:]:
        raise InputError(
            "normalization std", f"expected shape {tuple(flat.shape[1:])}, got {tuple(std.shape)}"
        )
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(flat.shape, generator=gen, dtype=torch.float32)
    return flat.float().cpu() + sigma * std.float().cpu() * noise


def _median(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else None


def _record(name: str, metrics: Mapping[str, Any], points: dict[str, list], seconds: float) -> dict:
    """The table's row (ROW_KEYS first, then the medians the scatter and the verdict use) and its points."""
    return {
        "name": name,
        "mmd": metrics.get("mmd"),
        "cov": metrics.get("cov"),
        "nna": metrics.get("nna"),
        "nna_ci95": metrics.get("nna_ci95"),
        "n_generated": metrics.get("n_generated"),
        "n_empty": metrics.get("n_empty"),
        "novelty_median_cd": _median(points["nearest_train_cd"]),
        "median_nearest_test_cd": _median(points["nearest_test_cd"]),
        "n_evaluated": metrics.get("n_evaluated"),
        "seconds": seconds,
        "points": points,
    }


def score_weights(
    name: str,
    flat: torch.Tensor,
    layout: Layout,
    field: FieldConfig,
    reference: Clouds,
    train: Clouds,
    cfg: EvaluateConfig,
    part_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A row for weight vectors (samples, a baseline's samples, noised training weights): meshed,
    sampled and scored by the evaluate stage's own function, so every weight row is comparable.

    Returns the row (ROW_KEYS, plus n_evaluated, seconds, mesh_status) with `points`: per scored shape,
    its CD to the nearest training and the nearest test shape.
    """
    t0 = time.perf_counter()
    result = evaluate_weight_vectors(flat, layout, field, reference, train, cfg=cfg, part_names=part_names)
    points = {
        "nearest_train_cd": result["per_sample"]["nearest_train_cd"],
        "nearest_test_cd": result["per_sample"]["nearest_reference_cd"],
    }
    row = _record(name, result["metrics"], points, time.perf_counter() - t0)
    row["mesh_status"] = result["metrics"]["mesh_status"]
    return json_ready(row)


def score_train_as_generator(
    train: Clouds, reference: Clouds, cfg: EvaluateConfig, part_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The oracle memorizer's row: the evaluate stage's yardstick (ground-truth training clouds as the
    generated set). Its shapes ARE training shapes: novelty 0 and every nearest-training CD 0."""
    t0 = time.perf_counter()
    metrics, per_sample = train_as_generator_scored(train, reference, cfg, part_names)
    near_test = per_sample["nearest_reference_cd"]
    points = {"nearest_train_cd": [0.0] * len(near_test), "nearest_test_cd": near_test}
    return json_ready(_record("train_as_generator", metrics, points, time.perf_counter() - t0))


def protocol(cfg: EvaluateConfig, n_references: int, n_train: int) -> dict[str, Any]:
    """What makes two tables comparable (a resumed table keeps only rows scored under the same)."""
    return {
        "reference_split": "test",
        "n_references": n_references,
        "n_train": n_train,
        "normalization": cfg.normalization,
        "resolution": cfg.resolution,
        "level": cfg.level,
        "n_points": cfg.n_points,
        "generate_factor": cfg.generate_factor,
        "seed": cfg.seed,
        "nna_resamples": cfg.nna_resamples,
    }


def table_document(
    rows: Sequence[Mapping[str, Any]],
    proto: Mapping[str, Any],
    *,
    stages: Mapping[str, float] | None = None,
    wall_seconds: float | None = None,
    commit: str | None = None,
    command: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The table file: rows in ROW_NAMES order (unknown names refused), with the protocol and the run's
    stage times, commit and command. Rows keep their scatter points; `without_points` drops them."""
    unknown = [r["name"] for r in rows if r["name"] not in ROW_NAMES]
    if unknown:
        raise InputError(
            "quality table rows", f"unknown row names {unknown}; expected names from {ROW_NAMES}"
        )
    ordered = sorted(rows, key=lambda r: ROW_NAMES.index(r["name"]))
    return json_ready(
        {
            "format": TABLE_FORMAT,
            "wall_seconds": wall_seconds,
            "stages": dict(stages or {}),
            "n_references": proto["n_references"],
            "normalization": proto["normalization"],
            "commit": commit,
            "command": command,
            "protocol": dict(proto),
            "rows": [dict(r) for r in ordered],
            "missing_rows": [n for n in ROW_NAMES if n not in {r["name"] for r in rows}],
            **dict(extra or {}),
        }
    )


def without_points(table: Mapping[str, Any]) -> dict[str, Any]:
    """The table without per-shape points (benchmarks/results/paper_scale.json stays small)."""
    return {**table, "rows": [{k: v for k, v in r.items() if k != "points"} for r in table["rows"]]}


def _num(x: Any, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def table_markdown(table: Mapping[str, Any]) -> str:
    """The rows as a Markdown table (BENCHMARKS.md `paper_scale`)."""
    header = (
        "| row | MMD | COV | 1-NNA | 1-NNA 95% CI | generated | empty | novelty (median CD to train) "
        "| median CD to test |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        ci = r.get("nna_ci95")
        ci_text = "n/a" if not ci or None in ci else f"{ci[0]:.3f}-{ci[1]:.3f}"
        lines.append(
            f"| {r['name']} | {_num(r.get('mmd'), '.4g')} | {_num(r.get('cov'), '.3f')} | "
            f"{_num(r.get('nna'), '.3f')} | {ci_text} | {_num(r.get('n_generated'), 'd')} | "
            f"{_num(r.get('n_empty'), 'd')} | {_num(r.get('novelty_median_cd'), '.4g')} | "
            f"{_num(r.get('median_nearest_test_cd'), '.4g')} |"
        )
    missing = table.get("missing_rows") or []
    if missing:
        lines.append(f"\nNot scored in this run: {', '.join(missing)}.")
    verdict = noise_verdict(table)
    if verdict:
        lines.append("\nAgainst the memorizers (training set and the two noise levels):\n")
        lines += [f"- {v}" for v in verdict]
    return "\n".join(lines)


def median_points(row: Mapping[str, Any]) -> tuple[float, float]:
    """(median nearest-train CD, median nearest-test CD) of a row's scored shapes (NaN when none)."""
    x, y = row.get("novelty_median_cd"), row.get("median_nearest_test_cd")
    return (math.nan if x is None else float(x), math.nan if y is None else float(y))


MEMORIZERS = ("train_as_generator", "noise_low", "noise_high")


def noise_verdict(table: Mapping[str, Any]) -> list[str]:
    """Where each generated row sits against the memorizers, in words.

    The memorizers (training set, then the two noise levels) trace a curve of median nearest-test CD
    against median nearest-training CD (novelty); a row is compared with that curve at its own novelty
    (linear between the memorizer points). Below the curve: closer to the test set than copying
    training shapes with that much noise; above: farther.
    """
    rows = {r["name"]: r for r in table["rows"]}
    curve = sorted(median_points(rows[n]) for n in MEMORIZERS if n in rows)
    curve = [(x, y) for x, y in curve if math.isfinite(x) and math.isfinite(y)]
    out = []
    for r in table["rows"]:
        if r["name"] in MEMORIZERS:
            continue
        x, y = median_points(r)
        if not (math.isfinite(x) and math.isfinite(y)) or len(curve) < 2:
            out.append(f"{r['name']}: no scored shapes or too few memorizer rows to compare with")
            continue
        xs, ys = zip(*curve, strict=True)
        if x > xs[-1]:
            where = (
                f"more novel (median CD to train {x:.4g}) than the highest noise level ({xs[-1]:.4g}); "
                f"median CD to test {y:.4g} vs {ys[-1]:.4g} there"
            )
        else:
            at = float(np.interp(x, xs, ys))
            side = "closer to the test set than" if y < at else "farther from the test set than"
            where = (
                f"median CD to test {y:.4g} at novelty {x:.4g}: {side} the noise baselines at equal "
                f"novelty ({at:.4g})"
            )
        out.append(f"{r['name']}: {where}")
    return out
