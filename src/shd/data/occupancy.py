"""Inside/outside tests and part labels for query points.

The inside test is libigl's generalized winding number (> 0.5 is inside): right on watertight meshes
and, unlike ray parity, also on overlapping part soups. benchmarks/bench_data.py compares libigl's
exact and fast (tree-approximated) winding numbers and trimesh's ray test on the same meshes: the
exact sum costs O(faces) per query and wins on small meshes (procedural shapes, ~2k faces), the fast
one wins on large ones (repaired real meshes), so the choice is made by face count.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from shd.data.shape import PartMesh, PreparedShape

OUTSIDE = -1
# Measured crossover (bench_data.py): exact is ~4x faster at 1.7k faces and scales linearly with faces.
EXACT_MAX_FACES = 5000


def winding_number(vertices: np.ndarray, faces: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Generalized winding number of a triangle mesh at each query point (1 inside, 0 outside)."""
    import igl  # the CPU path only: the device path (sampling_torch) runs without libigl

    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    q = np.ascontiguousarray(queries, dtype=np.float64)
    if len(q) == 0:
        return np.zeros(0)
    if len(f) <= EXACT_MAX_FACES:
        return igl.winding_number(v, f, q)
    return igl.fast_winding_number(v, f, q)


def inside(vertices: np.ndarray, faces: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return winding_number(vertices, faces, queries) > 0.5


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted surface samples and the face each came from (seeded by `rng`)."""
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    seed = int(rng.integers(0, 2**31 - 1))
    points, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points), np.asarray(face_index)


def _part_distance(part: PartMesh, queries: np.ndarray) -> np.ndarray:
    """Exact distance to the part's surface (the device path computes the same, see triangle_distance)."""
    import igl

    v = np.ascontiguousarray(part.vertices, dtype=np.float64)
    f = np.ascontiguousarray(part.faces, dtype=np.int64)
    sq, _, _ = igl.point_mesh_squared_distance(np.ascontiguousarray(queries, dtype=np.float64), v, f)
    return np.sqrt(sq)


def label_inside_by_parts(
    parts: list[PartMesh | None], queries: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Part index of each (inside) query: the part volume that holds it.

    A point held by several overlapping parts, or by none (winding-number round-off at a seam), goes
    to the part among its candidates whose surface is nearest (exact distance). `rng` is unused (kept
    for callers; nearest surfaces were once estimated from random surface samples).
    """
    present = [i for i, p in enumerate(parts) if p is not None]
    holds = np.stack([inside(parts[i].vertices, parts[i].faces, queries) for i in present], axis=1)
    labels = np.full(len(queries), OUTSIDE, dtype=np.int64)
    single = holds.sum(axis=1) == 1
    labels[single] = np.asarray(present)[holds[single].argmax(axis=1)]
    ambiguous = np.flatnonzero(~single)
    if len(ambiguous):
        dist = np.stack([_part_distance(parts[i], queries[ambiguous]) for i in present], axis=1)
        candidates = holds[ambiguous]
        candidates[~candidates.any(axis=1)] = True  # held by none: every part is a candidate
        dist[~candidates] = np.inf
        labels[ambiguous] = np.asarray(present)[dist.argmin(axis=1)]
    return labels


def label_by_nearest_point(
    label_points: np.ndarray, label_values: np.ndarray, queries: np.ndarray
) -> np.ndarray:
    """Reference labelling for real scans: the label of the nearest annotated point."""
    _, idx = cKDTree(label_points).query(queries)
    return np.asarray(label_values, dtype=np.int64)[idx]


def occupancy_and_labels(
    shape: PreparedShape, queries: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy (bool) of the whole shape and a part label per point (-1 outside)."""
    occ = inside(shape.vertices, shape.faces, queries)
    labels = np.full(len(queries), OUTSIDE, dtype=np.int64)
    if occ.any():
        q_in = queries[occ]
        if shape.parts is not None:
            labels[occ] = label_inside_by_parts(shape.parts, q_in, rng)
        elif shape.label_points is not None:
            labels[occ] = label_by_nearest_point(shape.label_points, shape.label_values, q_in)
        else:
            labels[occ] = label_by_nearest_face(shape, q_in)
    return occ, labels


def label_by_nearest_face(shape: PreparedShape, queries: np.ndarray) -> np.ndarray:
    """Fallback labelling from the labelled surface itself (nearest face centroid)."""
    centroids = shape.vertices[shape.faces].mean(axis=1)
    _, idx = cKDTree(centroids).query(queries)
    return np.asarray(shape.face_labels, dtype=np.int64)[idx]
