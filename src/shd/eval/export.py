"""Part-coloured mesh files (OBJ, PLY, GLB) written atomically through trimesh.

PLY stores one colour per face on the shared-vertex mesh. OBJ and GLB have no face colours (trimesh
would blend them into vertex colours across part borders), so they get one named object per part,
each with its own vertex copies in the part colour: a viewer shows crisp parts and lists them by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh

from shd.atomic import write_bytes
from shd.errors import InputError
from shd.eval.meshing import MeshResult
from shd.eval.palette import part_name, part_rgba8

FORMATS = ("obj", "ply", "glb")


def _scene_by_part(mesh: MeshResult, part_names: list[str] | tuple[str, ...] | None) -> trimesh.Scene:
    scene = trimesh.Scene()
    for label in np.unique(mesh.face_labels):
        faces = mesh.faces[mesh.face_labels == label]
        used, inverse = np.unique(faces, return_inverse=True)
        colors = np.tile(part_rgba8(np.array([label]))[0], (len(used), 1))
        part = trimesh.Trimesh(
            mesh.vertices[used], inverse.reshape(-1, 3), vertex_colors=colors, process=False
        )
        name = part_name(int(label), part_names)
        scene.add_geometry(part, geom_name=name, node_name=name)
    return scene


def mesh_bytes(mesh: MeshResult, fmt: str, part_names: list[str] | tuple[str, ...] | None = None) -> bytes:
    """The file contents of a part-coloured mesh in `fmt` (obj, ply or glb)."""
    if fmt not in FORMATS:
        raise InputError(f"mesh format '{fmt}'", f"expected one of {', '.join(FORMATS)}")
    if not mesh.ok or len(mesh.faces) == 0:
        raise ValueError(f"cannot export a mesh with status {mesh.status!r}: {mesh.reason}")
    if fmt == "ply":
        tm = trimesh.Trimesh(
            mesh.vertices, mesh.faces, face_colors=part_rgba8(mesh.face_labels), process=False
        )
        data = tm.export(file_type="ply")
    else:
        data = _scene_by_part(mesh, part_names).export(file_type=fmt)
    return data.encode("utf-8") if isinstance(data, str) else data


def export_mesh(
    mesh: MeshResult, path: str | os.PathLike, part_names: list[str] | tuple[str, ...] | None = None
) -> Path:
    """Write `mesh` to `path`, the format taken from its suffix (.obj, .ply, .glb)."""
    path = Path(path)
    write_bytes(path, mesh_bytes(mesh, path.suffix.lower().lstrip("."), part_names))
    return path
