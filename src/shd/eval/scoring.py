"""Scoring generated weights or clouds against the test references: one row per generator.

Every generator (samples, reconstructions, the training set as generator, the single-MLP baseline, the
quality table's rows) goes through `cloud_metrics`, so rows compare: MMD/COV/1-NNA with its interval,
per-part MMD/COV, novelty against the training set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch

from shd.data.sample_store import SampleSet
from shd.devices import resolve_device
from shd.errors import InputError
from shd.eval.config import EvaluateConfig
from shd.eval.meshing import MeshResult, status_counts
from shd.eval.metrics import generation_metrics, n_to_generate, nearest_in, novelty, part_metrics
from shd.eval.pointclouds import sample_clouds
from shd.eval.reconstruct import mesh_weights
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout
from shd.fields.weight_set import WeightSet

# generation_metrics' names -> the names of record in reports/eval.json
_RENAMES = {
    "n_generated": "n_evaluated",
    "1-nna": "nna",
    "1-nna_generated": "nna_generated",
    "1-nna_reference": "nna_reference",
    "1-nna_ci95": "nna_ci95",
}


@dataclass
class Clouds:
    """Point clouds (N, n, 3), with each point's part label (N, n) when known."""

    points: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    def take(self, index: Sequence[int] | np.ndarray) -> Clouds:
        index = np.asarray(index, dtype=np.int64)
        return Clouds(self.points[index], None if self.labels is None else self.labels[index])


class WeightEvaluation(TypedDict):
    metrics: dict[str, Any]  # counts, mmd/cov/nna, parts, novelty (JSON-ready after `json_ready`)
    meshes: list[MeshResult]  # one per weight vector, failed ones included (renders)
    # per scored cloud: index (into the vectors), nearest_reference_cd / _index, nearest_train_cd / _index;
    # per reference: reference_nearest_cd (CD to the nearest scored cloud)
    per_sample: dict[str, list]
    # per weight vector, meshed ones scored or not: nearest_train_cd / _index (NaN / -1 when not meshed)
    rows: dict[str, list]


def surface_clouds(samples: SampleSet, ids: list[str]) -> Clouds:
    """The ground-truth evaluation clouds (`surface`, `surface_labels`) of these shapes."""
    if not ids:
        return Clouds(np.zeros((0, 1, 3), np.float32), np.zeros((0, 1), np.int64))
    arrays = samples.load(ids, ("surface", "surface_labels"))
    return Clouds(arrays["surface"].astype(np.float32), arrays["surface_labels"].astype(np.int64))


def cloud_metrics(
    generated: Clouds,
    reference: Clouds,
    train: Clouds | None,
    cfg: EvaluateConfig,
    part_names: Sequence[str] | None,
    device: torch.device,
    train_nearest: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict, dict[str, list]]:
    """One generator's row: MMD/COV/1-NNA, per-part MMD/COV (labelled clouds), novelty (with `train`).

    Every generator goes through this one function, so rows compare. Returns (row, per-sample lists:
    `index` into `generated` of each evaluated cloud, its nearest reference and training cloud: CD and
    position; each reference's CD to the nearest evaluated cloud). `train_nearest`: each generated
    cloud's nearest training cloud (CD, position), when the caller computed it already.
    """
    opts = {"normalization": cfg.normalization, "device": device, "backend": cfg.backend}
    report = generation_metrics(
        generated.points,
        reference.points,
        per_sample=True,
        nna_resamples=cfg.nna_resamples,
        seed=cfg.seed,
        **opts,
    )
    used = report.pop("generated_index")
    per_sample = {
        key: report.pop(key)
        for key in ("nearest_reference_cd", "nearest_reference_index", "reference_nearest_cd")
    }
    per_sample["index"] = used
    row = {_RENAMES.get(k, k): v for k, v in report.items()}
    evaluated = generated.take(used)
    row["parts"] = None
    if part_names and evaluated.labels is not None and reference.labels is not None:
        row["parts"] = part_metrics(
            evaluated.points,
            evaluated.labels,
            reference.points,
            reference.labels,
            n_parts=len(part_names),
            part_names=part_names,
            **opts,
        )["parts"]
    if train is not None:
        near = None if train_nearest is None else tuple(np.asarray(a)[used] for a in train_nearest)
        found = novelty(evaluated.points, train.points, nearest=near, **opts)
        per_sample["nearest_train_cd"] = found.pop("nearest_train_cd", [math.nan] * len(used))
        per_sample["nearest_train_index"] = found.pop("nearest_train_index", [-1] * len(used))
        row["novelty"] = found
    return row, per_sample


def evaluate_weight_vectors(
    flat: torch.Tensor,
    layout: Layout,
    field: FieldConfig,
    reference: Clouds,
    train: Clouds | None = None,
    *,
    cfg: EvaluateConfig = EvaluateConfig(),
    part_names: Sequence[str] | None = None,
) -> WeightEvaluation:
    """Decode weight vectors (N, D) to meshes and clouds and score them against `reference`.

    Failed meshes (NaN weights, empty or NaN fields, no area) are counted in `n_empty` and skipped.
    Part metrics need a semantic field with one expert per name in `part_names`.
    """
    device = resolve_device(cfg.device, "evaluate.device")
    meshes = mesh_weights(
        flat,
        layout,
        field,
        resolution=cfg.resolution,
        level=cfg.level,
        batch_size=cfg.batch_size,
        chunk_points=cfg.chunk_points,
        device=device,
    )
    sampled = sample_clouds(meshes, cfg.n_points, seed=cfg.seed)
    labelled = field.semantic and part_names is not None and field.n_experts == len(part_names)
    clouds = Clouds(sampled.points, sampled.labels if labelled else None)
    near = None
    if train is not None:  # every meshed vector, scored or clipped: the report shows each by its neighbour
        near = nearest_in(
            clouds.points, train.points, normalization=cfg.normalization, device=device, backend=cfg.backend
        )
    parts = part_names if labelled else None
    row, per_sample = cloud_metrics(clouds, reference, train, cfg, parts, device, train_nearest=near)
    per_sample["index"] = sampled.index[per_sample["index"]].tolist()
    rows = {"nearest_train_cd": [math.nan] * len(flat), "nearest_train_index": [-1] * len(flat)}
    if near is not None:
        cd, index = near
        for r, c, i in zip(sampled.index.tolist(), cd.tolist(), index.tolist(), strict=True):
            rows["nearest_train_cd"][r], rows["nearest_train_index"][r] = c, i
    metrics = {
        "n_generated": len(flat),
        "n_empty": len(flat) - len(sampled.points),
        "mesh_status": {**status_counts(meshes), "zero_area": sampled.skipped.get("zero_area", 0)},
        **row,
    }
    return WeightEvaluation(metrics=metrics, meshes=meshes, per_sample=per_sample, rows=rows)


def training_pick(n_train: int, n_reference: int, cfg: EvaluateConfig) -> np.ndarray:
    """Which training shapes stand in for a generator's output: 1.1x the references (at most all of
    them), without replacement, seeded; the memorizer yardsticks all draw the same ones."""
    n = min(n_train, n_to_generate(n_reference, cfg.generate_factor))
    return np.random.default_rng(cfg.seed).choice(n_train, size=n, replace=False)


def train_as_generator_scored(
    train: Clouds, reference: Clouds, cfg: EvaluateConfig, part_names: Sequence[str] | None
) -> tuple[dict[str, Any], dict[str, list]]:
    """`train_as_generator`'s row and its per-sample lists (as `cloud_metrics` gives them)."""
    pick = training_pick(len(train), len(reference), cfg)
    row, per_sample = cloud_metrics(
        train.take(pick), reference, None, cfg, part_names, resolve_device(cfg.device, "evaluate.device")
    )
    return {"n_generated": len(pick), "n_empty": 0, **row}, per_sample


def train_as_generator(
    train: Clouds, reference: Clouds, cfg: EvaluateConfig, part_names: Sequence[str] | None
) -> dict[str, Any]:
    """Yardstick: ground-truth training clouds used as the generated set (1.1x the references, seeded).

    A generator that only memorized its training set scores this; novelty is left out (it is 0).
    """
    return train_as_generator_scored(train, reference, cfg, part_names)[0]


def stage_category(weights: WeightSet, wanted: str | None) -> str:
    """The category evaluated: the one asked for, else the weight set's first."""
    categories = list(weights.manifest["categories"])
    if not categories:
        raise InputError(weights.root / "manifest.json", "lists no categories")
    if wanted is None:
        return categories[0]
    if wanted not in categories:
        raise InputError("evaluate.category", f"'{wanted}' is not in the weight set ({categories})")
    return wanted


def reconstruction_ids(weights: WeightSet, category: str) -> list[str]:
    """Test-split shapes of `category` whose fit is good (status ok): the reconstruction set."""
    ids = weights.ids(split="test", category=category, status="ok")
    if not ids:
        raise InputError(weights.root, f"no test-split {category} shapes with a good fit (status ok)")
    return ids


def baseline_row(
    path: str | Path | None,
    category: str,
    reference: Clouds,
    train: Clouds,
    cfg: EvaluateConfig,
    part_names: Sequence[str],
) -> dict[str, Any] | None:
    """Yardstick: the single-MLP baseline's test reconstructions (None when no baseline is configured)."""
    if path is None:
        return None
    base = WeightSet.open(path)
    flat = base.load_flat(reconstruction_ids(base, category))
    result = evaluate_weight_vectors(
        flat, base.layout, base.field, reference, train, cfg=cfg, part_names=part_names
    )
    return {"weights": str(path), **result["metrics"]}
