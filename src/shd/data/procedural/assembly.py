"""One procedural shape: the exact boolean union of its part volumes, with per-face part labels kept from
each face's provenance (not guessed from nearest neighbours), normalized into the shared frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import manifold3d as m
import numpy as np

from shd.data.categories import PROCEDURAL_CATEGORIES, get_category
from shd.data.geometry import apply_normalization, normalization
from shd.data.procedural.airplane import AirplaneDesign, build_airplane, sample_airplane
from shd.data.procedural.chair import ChairDesign, build_chair, sample_chair
from shd.data.procedural.primitives import Pieces
from shd.data.procedural.rng import Sampler, shape_rng
from shd.data.shape import SPLITS, PartMesh, PreparedShape
from shd.errors import InputError

GENERATOR_VERSION = 1
Design = AirplaneDesign | ChairDesign
DESIGNS: dict[str, tuple[Callable[[Sampler], Any], Callable[[Any], Pieces]]] = {
    "airplane": (sample_airplane, build_airplane),
    "chair": (sample_chair, build_chair),
}


def design_meta(design: Design) -> dict[str, Any]:
    """The design as JSON values for the shape's `meta` (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(design).items()}


def _checked(solid: m.Manifold, what: str) -> m.Manifold:
    if solid.status() != m.Error.NoError or solid.is_empty():
        raise RuntimeError(f"procedural {what}: manifold3d produced an invalid solid ({solid.status()})")
    return solid


def _mesh_arrays(mesh: m.Mesh64) -> tuple[np.ndarray, np.ndarray]:
    return (np.array(mesh.vert_properties[:, :3], dtype=np.float64), np.array(mesh.tri_verts, dtype=np.int64))


def _union_with_labels(pieces: Pieces) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[m.Manifold | None]]:
    """Exact union of the parts; each face labelled by the part it came from (manifold provenance)."""
    parts: list[m.Manifold | None] = []
    label_of_id: dict[int, int] = {}
    for i, group in enumerate(pieces):
        if not group:
            parts.append(None)
            continue
        part = _checked(m.Manifold.batch_boolean(group, m.OpType.Add), f"part {i}").as_original()
        label_of_id[part.original_id()] = i
        parts.append(part)
    union = _checked(m.Manifold.batch_boolean([p for p in parts if p is not None], m.OpType.Add), "union")
    mesh = union.to_mesh64()
    vertices, faces = _mesh_arrays(mesh)
    labels = np.full(len(faces), -1, dtype=np.int64)
    bounds = np.asarray(mesh.run_index, dtype=np.int64) // 3
    for k, original in enumerate(np.asarray(mesh.run_original_id).tolist()):
        labels[bounds[k] : bounds[k + 1]] = label_of_id.get(original, -1)
    if (labels < 0).any():
        raise RuntimeError("procedural union: faces without part provenance")
    return vertices, faces, labels, parts


def validate_generation_args(category: str, index: int, seed: int) -> str:
    name = get_category(category).name
    if name not in PROCEDURAL_CATEGORIES:
        raise InputError(
            f"category '{category}'",
            f"no procedural generator; expected one of {', '.join(PROCEDURAL_CATEGORIES)}",
        )
    for label, value in (("index", index), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise InputError(label, f"expected a non-negative integer, got {value!r}")
    return name


def generate_shape(category: str, index: int, seed: int, split: str = "train") -> PreparedShape:
    """One procedural shape, a pure function of (category, index, seed) so datasets are reproducible.

    The surface is the exact boolean union of the part volumes with per-face part labels; `parts`
    holds each part's closed volume (None for parts this design lacks), all normalized with the same
    bbox-centred transform into [-0.475, 0.475]^3. `meta` records the sampled design parameters.
    """
    name = validate_generation_args(category, index, seed)
    if split not in SPLITS:
        raise InputError("split", f"expected one of {', '.join(SPLITS)}, got {split!r}")
    sample, build = DESIGNS[name]
    design = sample(Sampler(shape_rng(int(seed), name, int(index))))
    vertices, faces, labels, parts = _union_with_labels(build(design))
    centre, scale = normalization(vertices, center="bbox")
    part_meshes: list[PartMesh | None] = []
    for part in parts:
        if part is None:
            part_meshes.append(None)
            continue
        pv, pf = _mesh_arrays(part.to_mesh64())
        part_meshes.append(PartMesh(apply_normalization(pv, centre, scale), pf))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "index": int(index),
        **design_meta(design),
        "normalization_center": [float(c) for c in centre],
        "normalization_scale": float(scale),
    }
    return PreparedShape(
        shape_id=f"proc-{name}-{int(index):05d}",
        category=name,
        split=split,
        source="procedural",
        vertices=apply_normalization(vertices, centre, scale),
        faces=faces,
        face_labels=labels,
        parts=part_meshes,
        meta=meta,
    )
