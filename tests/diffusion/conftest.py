"""Tiny synthetic weight sets written with the fields package's weight-set writer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shd.diffusion import short_attention
from shd.fields.config import FieldConfig, OverfitConfig
from shd.fields.layout import make_layout
from shd.fields.synthetic import PARTS
from shd.fields.weight_set import write_manifest, write_weight_shard
from shd.shards import shard_name

# 2 experts, 9 -> 8 -> 1: 8 tokens, 178 scalars
TINY_FIELD = FieldConfig(n_experts=2, hidden=(8,), n_freqs=1)

# shd's Triton kernels run natively on CUDA, and in Triton's interpreter on CPU-only machines (CI)
NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
IN_TRITON_INTERPRETER = pytest.mark.skipif(
    torch.cuda.is_available() or short_attention.triton is None or not short_attention.INTERPRETED,
    reason="CPU only (CUDA runs the kernels natively); needs Triton (a dev dependency) and its "
    "interpreter (tests/conftest.py)",
)


def make_weight_set(
    root: Path,
    flat: torch.Tensor,
    splits: list[str],
    categories: list[str],
    field: FieldConfig = TINY_FIELD,
    bad: tuple[int, ...] = (),
) -> Path:
    """One shard of the given vectors; shapes listed in `bad` get a held-out IoU below the threshold."""
    root.mkdir(parents=True, exist_ok=True)
    config = OverfitConfig(field=field, min_iou=0.5, min_part_iou=0.0)
    records = [
        {
            "shape_id": f"{c}_{i:03d}",
            "category": c,
            "split": s,
            "fit_status": "ok",
            "reason": "",
            "steps": 10,
            "loss": 0.1,
            "train_iou": 0.9,
            "iou": 0.1 if i in bad else 0.9,
            "part_iou": [0.9] * field.n_experts,
        }
        for i, (s, c) in enumerate(zip(splits, categories, strict=True))
    ]
    write_weight_shard(root / shard_name(0), flat, records, "synthetic")
    parts = {c: PARTS[c][: field.n_experts] for c in sorted(set(categories))}
    write_manifest(root, config, parts, [shard_name(0)])
    return root


def random_weights(n: int, field: FieldConfig = TINY_FIELD, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, make_layout(field).dim, generator=gen) * 0.5


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny ops; other jobs share the 2 cores
