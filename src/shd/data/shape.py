"""The prepared-shape record: one normalized, watertight, part-labelled shape.

Every source (procedural generator, ShapeNetPart with meshes, ShapeNetPart points only) produces this
record, so validation and occupancy sampling have one input format. Stored as an `.npz` without
pickles (`allow_pickle=False`), written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shd.atomic import write_with
from shd.errors import InputError

SPLITS = ("train", "val", "test")


@dataclass
class PartMesh:
    """One closed triangle mesh (a part volume, or a whole surface)."""

    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64


@dataclass
class PreparedShape:
    """A shape ready for validation and occupancy sampling.

    `vertices/faces` is the watertight outer surface of the whole shape (for procedural shapes the
    exact boolean union of the parts), `face_labels` the part index (category order) of each face.
    `parts`, when present, holds one closed volume per part index (procedural shapes): inside points
    are labelled by the part volume that holds them. Otherwise `label_points/label_values` (real
    ShapeNetPart annotations) label points by nearest labelled point, as the reference does.
    """

    shape_id: str
    category: str
    split: str
    source: str
    vertices: np.ndarray
    faces: np.ndarray
    face_labels: np.ndarray
    parts: list[PartMesh | None] | None = None
    label_points: np.ndarray | None = None
    label_values: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """Write atomically as a pickle-free npz."""
        arrays: dict[str, np.ndarray] = {
            "vertices": np.asarray(self.vertices, dtype=np.float64),
            "faces": np.asarray(self.faces, dtype=np.int64),
            "face_labels": np.asarray(self.face_labels, dtype=np.int64),
        }
        if self.parts is not None:
            present = [p is not None for p in self.parts]
            arrays["part_present"] = np.asarray(present, dtype=bool)
            for i, p in enumerate(self.parts):
                if p is not None:
                    arrays[f"part{i}_vertices"] = np.asarray(p.vertices, dtype=np.float64)
                    arrays[f"part{i}_faces"] = np.asarray(p.faces, dtype=np.int64)
        if self.label_points is not None:
            arrays["label_points"] = np.asarray(self.label_points, dtype=np.float64)
            arrays["label_values"] = np.asarray(self.label_values, dtype=np.int64)
        header = {k: getattr(self, k) for k in ("shape_id", "category", "split", "source")}
        header["meta"] = self.meta
        arrays["header_json"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)

        def _write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)

        write_with(path, _write)

    @classmethod
    def load(cls, path: str | Path) -> PreparedShape:
        """Read a shape written by `save`; a damaged file is an `InputError` naming it."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            header = json.loads(bytes(data["header_json"]).decode("utf-8"))
        except Exception as exc:  # zip/format/key errors all mean the same: unreadable file
            raise InputError(path, f"not a readable prepared-shape npz ({exc})") from None
        parts = None
        if "part_present" in data:
            parts = [
                PartMesh(data[f"part{i}_vertices"], data[f"part{i}_faces"]) if present else None
                for i, present in enumerate(data["part_present"])
            ]
        return cls(
            shape_id=header["shape_id"],
            category=header["category"],
            split=header["split"],
            source=header["source"],
            vertices=data["vertices"],
            faces=data["faces"],
            face_labels=data["face_labels"],
            parts=parts,
            label_points=data.get("label_points"),
            label_values=data.get("label_values"),
            meta=header.get("meta", {}),
        )
