"""Occupancy-sample sets on disk: safetensors shards + `manifest.json`.

Per shape (row of a shard):
- `points` (N, 3) float32 training queries: near-surface (Gaussian jitter) then uniform in [-0.5, 0.5]^3;
- `occupancy` (N,) uint8, 1 inside; `labels` (N,) int8: part index for inside points, -1 outside;
- `eval_points`/`eval_occupancy`/`eval_labels`: an independently drawn held-out set (for IoU);
- `surface` (M, 3) float32 + `surface_labels` (M,) int8: the evaluation point cloud (M = 2,048).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shd.atomic import read_json_document, write_json
from shd.errors import InputError
from shd.shards import read_shard

FORMAT = "shd-samples/1"
ARRAY_KEYS = (
    "points",
    "occupancy",
    "labels",
    "eval_points",
    "eval_occupancy",
    "eval_labels",
    "surface",
    "surface_labels",
)


@dataclass(frozen=True)
class SampleEntry:
    shape_id: str
    category: str
    split: str
    shard: str
    row: int
    occupancy_ratio: float


class SampleSet:
    """Read access to a sample set; loads only the shards that hold the requested shapes."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = root
        self.manifest = manifest
        self.entries = [SampleEntry(**e) for e in manifest["shapes"]]
        self._by_id = {e.shape_id: e for e in self.entries}

    @classmethod
    def open(cls, root: str | Path) -> SampleSet:
        root = Path(root)
        manifest = read_json_document(
            root / "manifest.json", "run the `sample` stage first (dvc repro sample)", FORMAT
        )
        try:
            return cls(root, manifest)
        except (KeyError, TypeError) as exc:
            raise InputError(
                root / "manifest.json",
                f"malformed sample-set manifest ({type(exc).__name__}: {exc}); rerun the `sample` stage",
            ) from None

    @property
    def categories(self) -> dict[str, list[str]]:
        """Category name -> part names, in expert order."""
        return self.manifest["categories"]

    def ids(self, split: str | None = None, category: str | None = None) -> list[str]:
        return [
            e.shape_id
            for e in self.entries
            if (split is None or e.split == split) and (category is None or e.category == category)
        ]

    def entry(self, shape_id: str) -> SampleEntry:
        try:
            return self._by_id[shape_id]
        except KeyError:
            raise InputError(f"shape '{shape_id}'", f"not in the sample set {self.root}") from None

    def load(self, shape_ids: list[str], keys: tuple[str, ...] = ARRAY_KEYS) -> dict[str, np.ndarray]:
        """Stack the requested arrays for these shapes, in the given order."""
        wanted = [self.entry(s) for s in shape_ids]
        by_shard: dict[str, list[int]] = {}
        for i, e in enumerate(wanted):
            by_shard.setdefault(e.shard, []).append(i)
        out: dict[str, np.ndarray] = {}
        for shard, positions in by_shard.items():
            tensors, _ = read_shard(self.root / shard, list(keys))
            rows = max(wanted[p].row for p in positions)
            short = [k for k in keys if tensors[k].ndim == 0 or len(tensors[k]) <= rows]
            if short:
                raise InputError(
                    self.root / shard,
                    f"{short[0]} has fewer rows than the manifest's row {rows}; rerun the `sample` stage",
                )
            for k in keys:
                if k not in out:
                    out[k] = np.empty((len(wanted),) + tensors[k].shape[1:], dtype=tensors[k].dtype)
                out[k][positions] = tensors[k][[wanted[p].row for p in positions]]
        return out


def write_manifest(
    root: str | Path,
    config: dict[str, Any],
    categories: dict[str, list[str]],
    entries: list[SampleEntry],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the manifest last and atomically: its presence means the set is complete."""
    write_json(
        Path(root) / "manifest.json",
        {
            "format": FORMAT,
            "config": config,
            "categories": categories,
            "n_shapes": len(entries),
            "shapes": [asdict(e) for e in entries],
            **(extra or {}),
        },
    )
