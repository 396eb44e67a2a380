"""Weight sets on disk: safetensors shards of flat parameter vectors + `manifest.json`.

Shard tensor `params` is (S, D) float32, one row per shape in the flat layout; the shard's JSON
metadata holds the per-shape fit records (so the manifest can be rebuilt from shards alone). The
manifest, written last, lists every shape (id, category, split, shard, row, loss, IoU, per-part IoU,
status, reason) and every parameter block (expert/part, layer, tensor, shape, offset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from shd.atomic import read_json_document, write_json
from shd.errors import InputError
from shd.fields.config import FieldConfig, OverfitConfig
from shd.fields.layout import Layout, make_layout, unflatten
from shd.fields.moe import FieldModule
from shd.fields.quality import aggregate, judge
from shd.shards import read_shard, read_shard_meta, write_shard

FORMAT = "shd-weights/1"
PARAMS_KEY = "params"


def write_weight_shard(path: Path, params: torch.Tensor, records: list[dict], fp: str) -> None:
    """One shard: the (S, D) parameter rows and their fit records, atomically."""
    write_shard(
        path,
        {PARAMS_KEY: params.detach().cpu().float().numpy()},
        {
            "format": FORMAT,
            "fingerprint": fp,
            "shape_ids": [r["shape_id"] for r in records],
            "shapes": records,
        },
    )


def write_manifest(
    out_dir: Path,
    config: OverfitConfig,
    categories: dict[str, list[str]],
    shard_names: list[str],
    extra: dict[str, Any] | None = None,
) -> dict:
    """Collect the shards' records, judge each fit by the config's thresholds, write the manifest.

    Returns the aggregate quality dict (`iou_mean`, `iou_part_mean`, `n_shapes`, `n_bad`, ...).
    """
    parts = next(iter(categories.values())) if len(categories) == 1 else None
    shapes = []
    for name in shard_names:
        for row, rec in enumerate(read_shard_meta(out_dir / name)["shapes"]):
            if rec["fit_status"] == "failed":
                status, reason = "failed", rec["reason"]
            else:
                status, reason = judge(rec["iou"], rec["part_iou"], config)
            shapes.append(
                {**rec, "shard": name, "row": row, "status": status, "reason": reason or rec["reason"]}
            )
    summary = aggregate(shapes)
    layout = make_layout(config.field, parts)
    write_json(
        out_dir / "manifest.json",
        {
            "format": FORMAT,
            "config": config.to_dict(),
            "categories": categories,
            "layout": {"dim": layout.dim, "n_experts": layout.n_experts, "blocks": layout.to_json()},
            "summary": summary,
            "n_shapes": len(shapes),
            "shapes": shapes,
            **(extra or {}),
        },
    )
    return summary


class WeightSet:
    """Read access to a finished weight set."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = root
        self.manifest = manifest
        self.field = FieldConfig(**manifest["config"]["field"])
        self.layout = Layout.from_json(manifest["layout"]["blocks"])
        self.records = {r["shape_id"]: r for r in manifest["shapes"]}

    @classmethod
    def open(cls, root: str | Path) -> WeightSet:
        root = Path(root)
        manifest = read_json_document(
            root / "manifest.json", "run the `overfit` stage first (dvc repro overfit)", FORMAT
        )
        try:
            return cls(root, manifest)
        except InputError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                root / "manifest.json",
                f"malformed weight-set manifest ({type(exc).__name__}: {exc}); rerun the `overfit` stage",
            ) from None

    def ids(
        self, split: str | None = None, category: str | None = None, status: str | None = "ok"
    ) -> list[str]:
        """Shape ids, by default only good fits (bad and failed fits are excluded downstream)."""
        return [
            r["shape_id"]
            for r in self.manifest["shapes"]
            if (split is None or r["split"] == split)
            and (category is None or r["category"] == category)
            and (status is None or r["status"] == status)
        ]

    def summary(self) -> dict[str, Any]:
        """Quality aggregates (`iou_mean`, `iou_part_mean`, `n_shapes`, `n_bad`, `n_failed`)."""
        return aggregate(self.manifest["shapes"])

    def record(self, shape_id: str) -> dict[str, Any]:
        try:
            return self.records[shape_id]
        except KeyError:
            raise InputError(f"shape '{shape_id}'", f"not in the weight set {self.root}") from None

    def load_flat(self, shape_ids: list[str]) -> torch.Tensor:
        """(S, D) float32 flat parameter vectors, in the order asked."""
        recs = [self.record(s) for s in shape_ids]
        out = np.empty((len(recs), self.layout.dim), dtype=np.float32)
        by_shard: dict[str, list[int]] = {}
        for i, r in enumerate(recs):
            by_shard.setdefault(r["shard"], []).append(i)
        for shard, positions in by_shard.items():
            params = read_shard(self.root / shard, [PARAMS_KEY])[0][PARAMS_KEY]
            rows = [recs[p]["row"] for p in positions]
            if params.ndim != 2 or params.shape[1] != self.layout.dim or max(rows) >= len(params):
                raise InputError(
                    self.root / shard,
                    f"params {params.shape} do not match the manifest "
                    f"(rows up to {max(rows)}, layout dim {self.layout.dim}); rerun `overfit`",
                )
            out[positions] = params[rows]
        return torch.from_numpy(out)

    def load_params(self, shape_ids: list[str]) -> dict[str, torch.Tensor]:
        """Stacked parameters (`layer{l}.weight` (S, E, out, in), ...) for the batched evaluator."""
        return {k: v.contiguous() for k, v in unflatten(self.load_flat(shape_ids), self.layout).items()}

    def load_field(self, shape_id: str) -> FieldModule:
        return FieldModule.from_flat(self.load_flat([shape_id])[0], self.layout, self.field)


def load_field(weight_set_dir: str | Path, shape_id: str) -> FieldModule:
    """One shape's fitted field as an nn.Module (points (..., 3) -> occupancy logit)."""
    return WeightSet.open(weight_set_dir).load_field(shape_id)


def load_params(weight_set_dir: str | Path, shape_ids: list[str]) -> dict[str, torch.Tensor]:
    """Batched loader: stacked parameters of several shapes for `expert_logits`."""
    return WeightSet.open(weight_set_dir).load_params(shape_ids)
