"""Per-shape statistics: one row of the validation manifest table."""

from __future__ import annotations

from typing import Any

import numpy as np
import trimesh

from shd.data.categories import get_category
from shd.data.occupancy import inside
from shd.data.shape import PreparedShape


def shape_stats(shape: PreparedShape, n_occupancy_probe: int = 8192, seed: int = 0) -> dict[str, Any]:
    """Geometry, label and occupancy facts that the expectation suite checks."""
    category = get_category(shape.category)
    v, f, labels = shape.vertices, shape.faces, np.asarray(shape.face_labels)
    finite = bool(np.isfinite(v).all())
    row: dict[str, Any] = {
        "n_vertices": int(len(v)),
        "n_faces": int(len(f)),
        "nan_count": int((~np.isfinite(v)).sum()),
        "max_abs_coord": float(np.abs(v).max()) if len(v) and finite else float("nan"),
        "label_set": ",".join(str(x) for x in sorted(set(labels.tolist()))),
        "labels_valid": bool(len(labels) == len(f) and ((labels >= 0) & (labels < category.n_parts)).all()),
    }
    mesh = trimesh.Trimesh(v, f, process=False) if len(f) and finite else None
    row["watertight"] = bool(mesh is not None and mesh.is_watertight and mesh.is_winding_consistent)
    row["volume"] = float(mesh.volume) if row["watertight"] else float("nan")
    areas = mesh.area_faces if mesh is not None else np.zeros(len(f))
    total = float(areas.sum()) or 1.0
    present = []
    for i, part in enumerate(category.parts):
        share = float(areas[labels == i].sum() / total) if row["labels_valid"] else 0.0
        row[f"area_share_{part}"] = share
        if share > 0:
            present.append(share)
    row["n_parts_present"] = len(present)
    row["min_part_share"] = float(min(present)) if present else 0.0
    if mesh is not None:
        probe = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(n_occupancy_probe, 3))
        row["occupancy_ratio"] = float(inside(v, f, probe).mean())
    else:
        row["occupancy_ratio"] = float("nan")
    return row
