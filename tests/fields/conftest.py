"""Tiny synthetic sample sets in the documented `shd-samples/1` format (independent of the data stage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shd.data.sample_store import SampleEntry, write_manifest
from shd.fields.config import FieldConfig, OverfitConfig
from shd.fields.synthetic import PARTS, sample_shapes
from shd.shards import fingerprint, shard_name, write_shard

TINY_FIELD = FieldConfig(n_experts=4, hidden=(16, 16), n_freqs=2)


def tiny_config(**overrides) -> OverfitConfig:
    base = dict(
        field=TINY_FIELD,
        points_per_step=128,
        max_steps=40,
        warmup_steps=5,
        check_every=10,
        shard_size=2,
        max_batch=64,
        min_iou=0.0,
        min_part_iou=0.0,
    )
    return OverfitConfig(**{**base, **overrides})


def make_sample_set(
    root: Path,
    n_shapes: int = 5,
    seed: int = 0,
    nan_shape: int | None = None,
    shard_size: int = 3,
    category: str = "airplane",
) -> Path:
    """Write `n_shapes` analytic shapes (splits train.., then val, test) as a sample set."""
    arrays = {
        k: v.numpy()
        for k, v in sample_shapes(
            category,
            n_shapes,
            seed=seed,
            n_near=500,
            n_uniform=500,
            n_eval_near=200,
            n_eval_uniform=200,
            n_surface=64,
        ).items()
    }
    if nan_shape is not None:
        arrays["points"][nan_shape, :7] = np.nan
    ids = [f"{category}_{seed}_{i:03d}" for i in range(n_shapes)]
    splits = ["train"] * (n_shapes - 2) + ["val", "test"]
    entries = []
    for k, start in enumerate(range(0, n_shapes, shard_size)):
        rows = slice(start, start + shard_size)
        meta = [
            {"shape_id": s, "category": category, "split": sp, "occupancy_ratio": float(o[500:].mean())}
            for s, sp, o in zip(ids[rows], splits[rows], arrays["occupancy"][rows], strict=True)
        ]
        write_shard(
            root / shard_name(k),
            {key: v[rows] for key, v in arrays.items()},
            {"fingerprint": fingerprint(seed, k), "shape_ids": ids[rows], "shapes": meta},
        )
        entries += [SampleEntry(shard=shard_name(k), row=i, **m) for i, m in enumerate(meta)]
    write_manifest(root, {"synthetic": True, "seed": seed}, {category: PARTS[category]}, entries)
    return root


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    return make_sample_set(tmp_path_factory.mktemp("samples"))


@pytest.fixture
def tiny():
    """Factory of tiny fit configs (fixture, so test modules need no imports from conftest)."""
    return tiny_config


@pytest.fixture
def make_samples():
    return make_sample_set


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny ops: OpenMP hand-offs cost more than they save on a busy box
