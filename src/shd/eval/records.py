"""The evaluation's per-sample records: the DVC plot CSV and data/eval/samples.json (what the report shows
of each sample without scoring again)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from shd.eval.config import SAMPLES_FORMAT
from shd.eval.scoring import WeightEvaluation
from shd.jsonio import json_ready


def nn_csv(per_sample: dict[str, list], shape_ids: Sequence[str] | None) -> str:
    """DVC plot data: one row per evaluated shape, its CD to the nearest reference and training cloud."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sample", "generated_index", "shape_id", "nearest_reference_cd", "nearest_train_cd"])
    rows = zip(
        per_sample["index"], per_sample["nearest_reference_cd"], per_sample["nearest_train_cd"], strict=True
    )
    for k, (i, ref_cd, train_cd) in enumerate(rows):
        writer.writerow([k, i, shape_ids[i] if shape_ids else "", _num(ref_cd), _num(train_cd)])
    return out.getvalue()


def _num(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else ""


def sample_records(
    result: WeightEvaluation,
    ref_ids: Sequence[str],
    train_ids: Sequence[str],
    shape_ids: Sequence[str] | None,
) -> dict[str, Any]:
    """`data/eval/samples.json`: per generated vector its mesh status, whether it was scored, its nearest
    reference (scored ones) and nearest training shape (meshed ones) by id and CD; per reference its CD
    to the nearest scored sample and how many samples have it as their nearest reference."""
    per, rows = result["per_sample"], result["rows"]
    scored = {row: k for k, row in enumerate(per["index"])}
    generated = []
    for i, mesh in enumerate(result["meshes"]):
        k, t = scored.get(i), rows["nearest_train_index"][i]
        generated.append(
            {
                "index": i,
                "shape_id": shape_ids[i] if shape_ids else None,
                "mesh_status": mesh.status,
                "scored": k is not None,
                "nearest_reference": None
                if k is None
                else {"id": ref_ids[per["nearest_reference_index"][k]], "cd": per["nearest_reference_cd"][k]},
                "nearest_train": None if t < 0 else {"id": train_ids[t], "cd": rows["nearest_train_cd"][i]},
            }
        )
    nearest = np.asarray(per["nearest_reference_index"], np.int64)
    hits = np.bincount(nearest[nearest >= 0], minlength=len(ref_ids))  # -1: no usable reference
    references = [
        {"id": rid, "nearest_generated_cd": cd, "n_nearest_of": int(n)}
        for rid, cd, n in zip(ref_ids, per["reference_nearest_cd"], hits, strict=True)
    ]
    return json_ready({"format": SAMPLES_FORMAT, "generated": generated, "references": references})
