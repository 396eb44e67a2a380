"""Quality figures of the three applications on a trained model (evaluation report, BENCHMARKS.md).

- hybrid fidelity: for train-split pairs (A, B) and each part p, the hybrid "p from B, the rest from
  A"; CD of every hybrid part to the part it came from, stitched and after harmonization (per
  strength), with the CD between A's and B's same part as the yardstick (how far apart the sources are);
- completion: each train shape completed from the kept parts (`quality_keep`); kept experts checked
  bit-identical, and MMD / COV / 1-NNA against the test split with the evaluation protocol, next to
  plain samples and the parents themselves;
- interpolation smoothness: per pair, part and method, the largest CD step between consecutive frames
  over the mean step (1 = evenly paced).

`quality_figures` computes them, `write_quality` writes metrics/apps.json; the benchmark script and the
pipeline entry share both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shd.apps.complete import complete_parts
from shd.apps.config import DEFAULTS, INTERPOLATIONS, AppsConfig
from shd.apps.hybrid import harmonize_weights, stitch
from shd.apps.interpolate import interpolate_part
from shd.apps.outputs import jump_ratio, mesh_all, part_cd, step_cds
from shd.apps.parents import expert_mask, part_indices, part_names
from shd.atomic import write_json
from shd.data.sample_store import SampleSet
from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError
from shd.eval.evaluate import (
    EvaluateConfig,
    evaluate_weight_vectors,
    stage_category,
    surface_clouds,
)
from shd.eval.meshing import status_counts
from shd.eval.metrics import n_to_generate
from shd.fields.weight_set import WeightSet
from shd.jsonio import json_ready


def _mean(values: Sequence[float | None]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def train_pairs(weights: WeightSet, category: str, n: int) -> list[tuple[str, str]]:
    """Up to `n` disjoint pairs of good train-split fits, in manifest order (deterministic)."""
    ids = weights.ids(split="train", category=category, status="ok")
    if len(ids) < 2:
        raise InputError(weights.root, f"needs at least 2 good train-split {category} fits for pairs")
    return [(ids[2 * k], ids[2 * k + 1]) for k in range(min(n, len(ids) // 2))]


def hybrid_figures(
    sampler: WeightSampler, weights: WeightSet, category: str, cfg: AppsConfig, strengths: Sequence[float]
) -> dict[str, Any]:
    """Per part p: hybrids 'p from B, rest from A' over the pairs, CD of each part to its source."""
    parts = part_names(category, weights)
    pairs = train_pairs(weights, category, cfg.quality_pairs)
    ids = sorted({i for pair in pairs for i in pair})
    flat = dict(zip(ids, weights.load_flat(ids), strict=True))
    meshes = mesh_all(torch.stack([flat[i] for i in ids]), sampler.layout, sampler.field, cfg)
    parent_mesh = dict(zip(ids, meshes, strict=True))
    hybrids, sources = [], []  # (pair, swapped part) in row order
    for a, b in pairs:
        for p in range(len(parts)):
            hybrids.append(stitch(flat[a], flat[b], expert_mask(sampler, [p])))
            sources.append((a, b, p))
    stitched = torch.stack(hybrids)
    variants = {"stitched": stitched}
    for s in strengths:
        variants[f"harmonized_{s:g}"] = harmonize_weights(
            sampler, stitched, s, steps=cfg.steps, category=category, seed=cfg.seed, guidance=cfg.guidance
        )
    out: dict[str, Any] = {"pairs": [list(p) for p in pairs], "strengths": list(strengths), "variants": {}}
    for name, rows in variants.items():
        meshes = mesh_all(rows, sampler.layout, sampler.field, cfg)
        swapped: dict[str, list] = {p: [] for p in parts}  # the part taken from B, vs B's
        kept: dict[str, list] = {p: [] for p in parts}  # the parts left from A, vs A's
        for mesh, (a, b, p) in zip(meshes, sources, strict=True):
            to_a, to_b = part_cd(mesh, parent_mesh[a], parts, cfg), part_cd(mesh, parent_mesh[b], parts, cfg)
            for q, part in enumerate(parts):
                (swapped if q == p else kept)[part].append((to_b if q == p else to_a)["chamfer"][part])
        out["variants"][name] = {
            "mesh_status": status_counts(meshes),
            "swapped_part_cd": {p: _mean(v) for p, v in swapped.items()},
            "kept_part_cd": {p: _mean(v) for p, v in kept.items()},
            "mean_part_cd": _mean([c for v in (*swapped.values(), *kept.values()) for c in v]),
        }
    yard = {p: [] for p in parts}
    for a, b in pairs:
        for p, c in part_cd(parent_mesh[a], parent_mesh[b], parts, cfg)["chamfer"].items():
            yard[p].append(c)
    out["parent_a_vs_parent_b_part_cd"] = {p: _mean(v) for p, v in yard.items()}
    out["parent_mesh_status"] = status_counts(list(parent_mesh.values()))
    return out


def completion_figures(
    sampler: WeightSampler, weights: WeightSet, samples: SampleSet, category: str, cfg: AppsConfig
) -> dict[str, Any]:
    """Completions of train shapes (kept: `quality_keep`) scored against the test split like `evaluate`."""
    parts = part_names(category, weights)
    keep = part_indices(cfg.quality_keep, parts, category, "apps.quality_keep")
    reference = surface_clouds(samples, samples.ids(split="test", category=category))
    train = surface_clouds(samples, samples.ids(split="train", category=category))
    if len(reference) == 0:
        raise InputError(samples.root, f"no test-split {category} shapes to score completions against")
    ids = weights.ids(split="train", category=category, status="ok")
    n = n_to_generate(len(reference))
    parents_ids = [ids[k % len(ids)] for k in range(n)]
    parents = weights.load_flat(parents_ids)
    completed = complete_parts(
        sampler,
        parents,
        keep,
        category,
        steps=cfg.steps,
        resample=cfg.resample,
        seed=cfg.seed,
        guidance=cfg.guidance,
    )
    mask = expert_mask(sampler, keep)
    sampled = sampler.sample(n, steps=cfg.steps, category=category, seed=cfg.seed, guidance=cfg.guidance)
    ecfg = EvaluateConfig(
        resolution=cfg.resolution,
        level=cfg.level,
        n_points=min(cfg.n_points, reference.points.shape[1]),
        device=cfg.device,
        seed=cfg.seed,
    )
    rows = {}
    for name, flat in (("completion", completed), ("plain_samples", sampled), ("parents", parents)):
        metrics = evaluate_weight_vectors(
            flat, sampler.layout, sampler.field, reference, train, cfg=ecfg, part_names=parts
        )["metrics"]
        keys = ("n_generated", "n_evaluated", "n_empty", "mmd", "cov", "nna", "mesh_status")
        rows[name] = {k: metrics.get(k) for k in keys}
        novelty = metrics.get("novelty") or {}
        rows[name]["novelty_median_nearest_train"] = novelty.get("median_nearest_train")
    return {
        "kept": [parts[k] for k in keep],
        "generated": [p for p in parts if parts.index(p) not in keep],
        "parents": parents_ids,
        "resample": cfg.resample,
        "steps": cfg.steps,
        "kept_bit_identical": bool(torch.equal(completed[:, mask], parents[:, mask])),
        "n_reference": len(reference),
        "normalization": ecfg.normalization,
        **rows,
    }


def interpolation_figures(
    sampler: WeightSampler, weights: WeightSet, category: str, cfg: AppsConfig
) -> dict[str, Any]:
    """Jump (largest step CD / mean step CD) per method and part over the train pairs."""
    parts = part_names(category, weights)
    pairs = train_pairs(weights, category, cfg.quality_pairs)
    jumps: dict[str, dict[str, list[float]]] = {m: {p: [] for p in parts} for m in INTERPOLATIONS}
    for a, b in pairs:
        fa, fb = weights.load_flat([a, b])
        for method in INTERPOLATIONS:
            frames = torch.cat(
                [interpolate_part(sampler, fa, fb, e, cfg.interp_steps, method) for e in range(len(parts))]
            )
            meshes = mesh_all(frames, sampler.layout, sampler.field, cfg)
            for e, part in enumerate(parts):
                chunk = meshes[e * cfg.interp_steps : (e + 1) * cfg.interp_steps]
                jumps[method][part].append(jump_ratio(step_cds(chunk, cfg)))
    out: dict[str, Any] = {"pairs": [list(p) for p in pairs], "frames": cfg.interp_steps}
    for method, per_part in jumps.items():
        every = [j for v in per_part.values() for j in v]
        finite = [j for j in every if math.isfinite(j)]
        out[method] = {
            "mean_jump": _mean(every),
            "max_jump": max(finite) if finite else math.nan,
            "n_failed": len(every) - len(finite),
            "n": len(every),
            "mean_jump_by_part": {p: _mean(v) for p, v in per_part.items()},
        }
    return out


def quality_figures(
    sampler: WeightSampler,
    weights: WeightSet,
    samples: SampleSet,
    *,
    cfg: AppsConfig = DEFAULTS,
    category: str | None = None,
    strengths: Sequence[float] | None = None,
) -> dict[str, Any]:
    """All three figures (JSON-ready), with their settings and the seconds each took."""
    category = stage_category(weights, category)
    strengths = [cfg.harmonize] if strengths is None else list(strengths)
    seconds: dict[str, float] = {}
    report: dict[str, Any] = {
        "category": category,
        "settings": {
            "resolution": cfg.resolution,
            "level": cfg.level,
            "n_points": cfg.n_points,
            "steps": cfg.steps,
            "resample": cfg.resample,
            "interp_steps": cfg.interp_steps,
            "pairs": cfg.quality_pairs,
            "seed": cfg.seed,
            "cd": "chamfer_l2_squared, common frame (hybrid, interpolation)",
        },
    }
    for key, fn in (
        ("hybrid", lambda: hybrid_figures(sampler, weights, category, cfg, strengths)),
        ("completion", lambda: completion_figures(sampler, weights, samples, category, cfg)),
        ("interpolation", lambda: interpolation_figures(sampler, weights, category, cfg)),
    ):
        start = time.perf_counter()
        report[key] = fn()
        seconds[key] = time.perf_counter() - start
    report["seconds"] = seconds
    return json_ready(report)


def write_quality(path: str | Path, report: dict[str, Any]) -> Path:
    """metrics/apps.json (atomic)."""
    write_json(path, report)
    return Path(path)
