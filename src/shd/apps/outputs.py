"""What the three applications share downstream of the weights: meshing, part-wise and step-wise
Chamfer distances, and an output folder (meshes, weights, renders, `summary.json` written last).

Distances here are in the shapes' common frame (no per-cloud normalization): a hybrid's wing is
compared with its parent's wing where both sit, so a moved part counts, not only a changed outline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shd.apps.config import AppsConfig
from shd.atomic import write_json
from shd.devices import resolve_device
from shd.eval.chamfer import chamfer_matrix
from shd.eval.export import export_mesh
from shd.eval.meshing import MeshResult
from shd.eval.metrics import part_chamfer
from shd.eval.pointclouds import sample_surface
from shd.eval.reconstruct import mesh_weights
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout
from shd.jsonio import json_ready
from shd.shards import write_shard

SUMMARY = "summary.json"


def mesh_all(flat: torch.Tensor, layout: Layout, field: FieldConfig, cfg: AppsConfig) -> list[MeshResult]:
    """One part-labelled mesh per row of `flat` (N, D) at the configured resolution and level."""
    return mesh_weights(
        flat,
        layout,
        field,
        resolution=cfg.resolution,
        level=cfg.level,
        device=resolve_device(cfg.device, "apps.device"),
    )


def _cloud(mesh: MeshResult, cfg: AppsConfig) -> tuple[np.ndarray, np.ndarray] | None:
    return sample_surface(mesh, cfg.n_points, cfg.seed) if mesh.ok else None


def part_cd(mesh: MeshResult, source: MeshResult, parts: Sequence[str], cfg: AppsConfig) -> dict[str, Any]:
    """CD of each part of `mesh` to the same part of `source` ({part: CD or None}, missing parts)."""
    a, b = _cloud(mesh, cfg), _cloud(source, cfg)
    if a is None or b is None:
        return {"chamfer": dict.fromkeys(parts), "missing": {}, "failed": True}
    return {**part_chamfer(a[0], a[1], b[0], b[1], len(parts), parts), "failed": False}


def step_cds(meshes: Sequence[MeshResult], cfg: AppsConfig) -> list[float]:
    """Whole-shape CD between consecutive meshes (NaN where either failed)."""
    clouds = [_cloud(m, cfg) for m in meshes]
    out = []
    for x, y in zip(clouds[:-1], clouds[1:], strict=True):
        if x is None or y is None:
            out.append(math.nan)
        else:
            out.append(float(chamfer_matrix(x[0][None], y[0][None], backend="kdtree")[0, 0]))
    return out


def jump_ratio(cds: Sequence[float]) -> float:
    """Largest step CD over the mean step CD (1 = evenly paced; NaN when a step failed or nothing moved)."""
    arr = np.asarray(cds, dtype=np.float64)
    if len(arr) == 0 or not np.isfinite(arr).all() or arr.mean() <= 0:
        return math.nan
    return float(arr.max() / arr.mean())


class OutputFolder:
    """One command's output folder; files are written atomically, `summary.json` last (its presence
    means the folder is complete, so a report never shows half an output)."""

    def __init__(self, root: str | Path, cfg: AppsConfig, parts: Sequence[str]):
        self.root = Path(root)
        self.cfg = cfg
        self.parts = list(parts)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / SUMMARY).unlink(missing_ok=True)

    def meshes(self, meshes: Sequence[MeshResult], names: Sequence[str]) -> list[dict[str, Any]]:
        """Write each usable mesh as `<name>.<format>`; returns per mesh its file (None if it failed)."""
        out = []
        for mesh, name in zip(meshes, names, strict=True):
            file = None
            if mesh.ok and len(mesh.faces):
                file = f"{name}.{self.cfg.mesh_format}"
                export_mesh(mesh, self.root / file, self.parts)
            out.append({"name": name, "file": file, "status": mesh.status, "faces": int(len(mesh.faces))})
        return out

    def weights(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
        """The edited weight vectors (name -> (N, D)) as one safetensors file."""
        arrays = {k: v.detach().cpu().float().reshape(-1, v.shape[-1]).numpy() for k, v in tensors.items()}
        write_shard(self.root / "weights.safetensors", arrays, json_ready(meta))
        return "weights.safetensors"

    def summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        doc = json_ready(
            {
                **summary,
                "parts": self.parts,
                "resolution": self.cfg.resolution,
                "mesh_format": self.cfg.mesh_format,
                "cd": "chamfer_l2_squared, common frame",
            }
        )
        write_json(self.root / SUMMARY, doc)
        return doc
