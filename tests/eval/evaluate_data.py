"""A tiny evaluation project on disk, built with the real layers, in about a second.

References are procedural airplanes sampled by the data layer (ground-truth surface clouds). Fitting
fields to them would take minutes on 2 cores, so the weight sets hold exact box fields instead: with
no positional encoding, one hidden ReLU per box face gives logit = inside - K * (distance outside the
faces), so each expert is one box (one part) and the meshes and face labels are known shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shd.data.procedural import generate_shape
from shd.data.sampling import SamplingConfig, sample_shapes
from shd.fields.config import FieldConfig, OverfitConfig
from shd.fields.layout import make_layout, unflatten
from shd.fields.weight_set import write_manifest, write_weight_shard
from shd.shards import shard_name

PARTS = ["body", "wing", "tail", "engine"]
SPLITS = ["train"] * 6 + ["test"] * 3
BAD_TEST = 7  # a test shape whose fit is judged bad: left out of the reconstructions
BOX_FIELD = FieldConfig(n_experts=4, hidden=(6,), n_freqs=0)
SINGLE_FIELD = FieldConfig(n_experts=1, hidden=(6,), n_freqs=0, semantic=False)
INSIDE, SLOPE = 5.0, 100.0
Box = tuple[tuple[float, float, float], tuple[float, float, float]]  # centre, half extents


def box_weights(boxes: list[Box | None], field: FieldConfig) -> torch.Tensor:
    """(D,) weights whose expert e is boxes[e]; None: an expert that is never inside."""
    flat = torch.zeros(1, make_layout(field).dim)
    p = unflatten(flat, make_layout(field))  # views into `flat`
    faces = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    for e, box in enumerate(boxes):
        if box is None:
            p["layer1.bias"][0, e] = -10.0
            continue
        c, h = torch.tensor(box[0]), torch.tensor(box[1])
        p["layer0.weight"][0, e] = faces
        p["layer0.bias"][0, e] = -(faces @ c) - h.repeat_interleave(2)  # distance beyond each face
        p["layer1.weight"][0, e] = -SLOPE
        p["layer1.bias"][0, e] = INSIDE
    return flat[0]


def airplane_boxes(i: int) -> list[Box | None]:
    """Body, wing, tail and (every other shape) an engine, sized by the shape index."""
    return [
        ((0.0, 0.0, 0.0), (0.4, 0.06, 0.06)),
        ((0.0, 0.0, 0.0), (0.08, 0.03, 0.25 + 0.03 * i)),
        ((-0.34, 0.08, 0.0), (0.05, 0.08, 0.04)),
        ((0.05, -0.09, 0.15), (0.06, 0.04, 0.04)) if i % 2 == 0 else None,
    ]


def single_boxes(i: int) -> list[Box | None]:
    return [((0.0, 0.0, 0.0), (0.4, 0.06 + 0.01 * i, 0.2))]


def write_weights(root: Path, ids: list[str], field: FieldConfig, boxes) -> Path:
    """A weight set of box fields over the sample set's shapes (same ids and splits)."""
    flat = torch.stack([box_weights(boxes(i), field) for i in range(len(ids))])
    records = [
        {
            "shape_id": s,
            "category": "airplane",
            "split": sp,
            "fit_status": "ok",
            "reason": "",
            "steps": 1,
            "loss": 0.0,
            "train_iou": 1.0,
            "iou": 0.1 if i == BAD_TEST else 0.99,
            "part_iou": [0.99] * field.n_experts,
        }
        for i, (s, sp) in enumerate(zip(ids, SPLITS, strict=True))
    ]
    write_weight_shard(root / shard_name(0), flat, records, "boxes")
    write_manifest(
        root, OverfitConfig(field=field, min_iou=0.5, min_part_iou=0.0), {"airplane": PARTS}, [shard_name(0)]
    )
    return root


@dataclass
class Project:
    samples: Path
    weights: Path
    baseline: Path
    ids: list[str]


def make_project(root: Path, n_surface: int = 256) -> Project:
    """data/samples (9 procedural airplanes: 6 train, 3 test), data/weights, data/weights_single."""
    paths = []
    for i, split in enumerate(SPLITS):
        shape = generate_shape("airplane", i, seed=0, split=split)
        paths.append(root / "data/prepared" / f"{shape.shape_id}.npz")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        shape.save(paths[-1])
    cfg = SamplingConfig(
        n_near=200, n_uniform=200, n_eval_near=50, n_eval_uniform=50, n_surface=n_surface, shard_size=16
    )
    sample_shapes(paths, root / "data/samples", cfg, {"airplane": PARTS})
    ids = [p.stem for p in paths]
    return Project(
        root / "data/samples",
        write_weights(root / "data/weights", ids, BOX_FIELD, airplane_boxes),
        write_weights(root / "data/weights_single", ids, SINGLE_FIELD, single_boxes),
        ids,
    )


def nan_rows(flat: torch.Tensor, rows: list[int]) -> torch.Tensor:
    out = flat.clone()
    out[rows] = np.nan
    return out
