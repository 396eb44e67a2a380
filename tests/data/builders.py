"""Hand-built shapes for data-layer tests (independent of the procedural generator)."""

from __future__ import annotations

import manifold3d as m
import numpy as np

from shd.data.geometry import apply_normalization, normalization
from shd.data.shape import PartMesh, PreparedShape


def _mesh(solid: m.Manifold) -> tuple[np.ndarray, np.ndarray]:
    mesh = solid.to_mesh()
    return np.asarray(mesh.vert_properties[:, :3], dtype=np.float64), np.asarray(mesh.tri_verts, np.int64)


def box_plane(shape_id: str = "box-plane", split: str = "train", wing_span: float = 1.6) -> PreparedShape:
    """A 'plane' of two overlapping boxes: body (part 0) along x, wing (part 1) along z."""
    body = m.Manifold.cube([1.0, 0.2, 0.2], True).as_original()
    wing = m.Manifold.cube([0.3, 0.04, wing_span], True).as_original()
    union = body + wing
    mesh = union.to_mesh()
    v = np.asarray(mesh.vert_properties[:, :3], dtype=np.float64)
    f = np.asarray(mesh.tri_verts, dtype=np.int64)
    labels = np.zeros(len(f), dtype=np.int64)
    run_to_part = {body.original_id(): 0, wing.original_id(): 1}
    for k, oid in enumerate(mesh.run_original_id):
        labels[mesh.run_index[k] // 3 : mesh.run_index[k + 1] // 3] = run_to_part[int(oid)]
    c, s = normalization(v, center="bbox")
    parts = [PartMesh(apply_normalization(pv, c, s), pf) for pv, pf in (_mesh(body), _mesh(wing))]
    return PreparedShape(
        shape_id=shape_id,
        category="airplane",
        split=split,
        source="test",
        vertices=apply_normalization(v, c, s),
        faces=f,
        face_labels=labels,
        parts=[parts[0], parts[1], None, None],
        meta={"scale": s},
    )
