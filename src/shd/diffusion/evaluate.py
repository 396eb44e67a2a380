"""Generation check of a sampler: sample weights, decode them as fields, mesh, compare point clouds.

Uses the evaluation layer's public functions only (meshing, clouds, MMD/COV/1-NNA, renders). Meant
to be cheap enough to run during training (few samples, low resolution); the protocol of record is
the evaluation stage's. References are the validation split's surface clouds from the sample set
when one is given, else the fitted validation fields meshed at the same resolution as the samples.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shd.data.sample_store import SampleSet
from shd.diffusion.sampler import WeightSampler
from shd.eval.meshing import MeshResult, status_counts
from shd.eval.metrics import generation_metrics
from shd.eval.pointclouds import CloudSet, sample_clouds
from shd.eval.reconstruct import mesh_weights
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout


def clouds_of_weights(
    flat: torch.Tensor,
    layout: Layout,
    field: FieldConfig,
    resolution: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> tuple[list[MeshResult], CloudSet]:
    """Mesh each field at `resolution` and sample its surface cloud; returns (meshes, CloudSet)."""
    meshes = mesh_weights(
        flat, layout, field, resolution=resolution, batch_size=max(1, len(flat)), device=device
    )
    return meshes, sample_clouds(meshes, seed=seed)


def reference_clouds(
    ids: list[str],
    flat: torch.Tensor,
    layout: Layout,
    field: FieldConfig,
    resolution: int,
    sample_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """(N, 2048, 3) clouds of the validation shapes `ids` (their fitted weights `flat`)."""
    if sample_dir is not None:
        return SampleSet.open(sample_dir).load(ids, ("surface",))["surface"].astype(np.float32)
    return clouds_of_weights(flat, layout, field, resolution, device)[1].points


def _clean(value: Any) -> Any:
    """NaN -> None, numpy scalars -> Python (JSON and MLflow friendly)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def generation_report(
    sampler: WeightSampler,
    reference: np.ndarray,
    n: int,
    *,
    steps: int = 50,
    resolution: int = 48,
    category: str | None = None,
    guidance: float = 1.0,
    seed: int = 0,
    method: str = "ddim",
    normalization: str = "unit_std",
    render_path: str | Path | None = None,
    part_names: list[str] | None = None,
) -> dict:
    """Sample `n` shapes, mesh them and report MMD/COV/1-NNA against `reference` clouds.

    Meshes that fail (empty or NaN fields) are counted, not fatal; a render grid is written when asked.
    """
    t0 = time.perf_counter()
    flat = sampler.sample(n, steps=steps, category=category, seed=seed, guidance=guidance, method=method)
    sample_s = time.perf_counter() - t0
    meshes, clouds = clouds_of_weights(flat, sampler.layout, sampler.field, resolution, sampler.device, seed)
    report: dict[str, Any] = {
        "n_samples": n,
        "steps": steps,
        "method": method,
        "resolution": resolution,
        "guidance": guidance,
        "sample_seconds": sample_s,
        "mesh_status": status_counts(meshes),
        "n_usable": len(clouds.points),
    }
    if len(clouds.points) and len(reference):
        report.update(
            generation_metrics(clouds.points, reference, normalization=normalization, device=sampler.device)
        )
    else:
        report.update(
            {"normalization": normalization, "mmd": float("nan"), "cov": float("nan"), "1-nna": float("nan")}
        )
    if render_path is not None:
        from shd.eval.render import render_grid  # matplotlib only when a render is asked for

        render_grid(
            meshes,
            render_path,
            part_names=part_names,
            title=f"{category or 'samples'}: {method.upper()}-{steps}, res {resolution}",
        )
        report["render"] = str(render_path)
    report["seconds"] = time.perf_counter() - t0
    return _clean(report)
