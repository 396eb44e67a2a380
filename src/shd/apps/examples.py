"""One output folder per command on fixed parents of a weight set: the panels an evaluation report
shows (`<root>/{hybrid,interpolate,complete}/summary.json` + meshes, PNGs, GIFs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shd.apps.complete import run_complete
from shd.apps.config import DEFAULTS, AppsConfig
from shd.apps.hybrid import run_hybrid
from shd.apps.interpolate import run_interpolate
from shd.apps.parents import part_names
from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError
from shd.eval.evaluate import stage_category
from shd.fields.weight_set import WeightSet


def write_examples(
    sampler: WeightSampler,
    weights: WeightSet,
    root: str | Path,
    *,
    cfg: AppsConfig = DEFAULTS,
    category: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Hybrid (first two train shapes: last part from A, the others from B, 2 harmonized variants when
    `cfg.harmonize` > 0),
    interpolation of the second part (train shapes 1 and 3), completion of the first test shape
    keeping `quality_keep` (4 completions). Returns each command's summary."""
    root = Path(root)
    category = stage_category(weights, category)
    train = weights.ids(split="train", category=category, status="ok")
    test = weights.ids(split="test", category=category, status="ok") or train
    if len(train) < 3:
        raise InputError(weights.root, f"needs at least 3 good train-split {category} fits for the examples")
    parts = part_names(category, weights)
    return {
        "hybrid": run_hybrid(
            sampler,
            root / "hybrid",
            parts_a=parts[-1:],
            parts_b=parts[:-1],
            parent_a=train[0],
            parent_b=train[1],
            weights=weights,
            n=2 if cfg.harmonize > 0 else 1,
            cfg=cfg,
        ),
        "interpolate": run_interpolate(
            sampler, root / "interpolate", a=train[0], b=train[2], part=parts[1], weights=weights, cfg=cfg
        ),
        "complete": run_complete(
            sampler, root / "complete", source=test[0], keep=cfg.quality_keep, weights=weights, n=4, cfg=cfg
        ),
    }
