"""Overfit sweep: mean held-out IoU of a fixed subset of shapes fitted with the trial's field and
optimizer settings, at the fixed step budget of the sweep's `fixed` overrides (the batched engine of
`shd.fields.fit`, exactly as the overfit stage fits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from shd.devices import resolve_device
from shd.errors import InputError
from shd.fields.config import OverfitConfig
from shd.fields.fit import fit_sample_set
from shd.sweep.space import merge, nest

SECTION = "overfit"
STAGE_ONLY = ("accelerator", "devices")  # how the stage launches, not what a fit is
# virtual keys: `field.width` x `field.depth` is the expert MLP, written back as `field.hidden`
WIDTH, DEPTH = "field.width", "field.depth"


class OverfitObjective:
    """Maximize mean IoU (failed fits count as 0) over the first `n_shapes` of the fixed splits."""

    section = SECTION
    direction = "maximize"
    metric = "iou_mean"

    def __init__(
        self, params: dict[str, Any], fixed: dict[str, Any], sample_dir: str | Path, n_shapes: int | None
    ):
        stage = dict(params.get(SECTION) or {})
        self.device = _device(stage.get("accelerator", "auto"))
        self.base = merge({k: v for k, v in stage.items() if k not in STAGE_ONLY}, fixed)
        self.base_field = OverfitConfig.from_dict(self.base).field  # checks the base before any trial
        self.sample_dir = Path(sample_dir)
        if not (self.sample_dir / "manifest.json").exists():
            raise InputError(
                self.sample_dir,
                "no sample set (manifest.json missing); run `make repro` or `dvc repro sample` first",
            )
        self.n_shapes = n_shapes

    def update(self, values: dict[str, Any]) -> dict[str, Any]:
        """The params.yaml fragment a trial's values stand for (`{overfit: {...}}`)."""
        values = dict(values)
        if WIDTH in values or DEPTH in values:
            width = values.pop(WIDTH, self.base_field.hidden[0])
            depth = values.pop(DEPTH, len(self.base_field.hidden))
            values["field.hidden"] = [int(width)] * int(depth)
        return {SECTION: nest(values)}

    def evaluate(
        self, trial: optuna.Trial, section: dict[str, Any], run_id: str, scratch: Path
    ) -> tuple[float, dict[str, Any]]:
        cfg = OverfitConfig.from_dict(section)
        summary = fit_sample_set(
            self.sample_dir, scratch / "weights", cfg, device=self.device, limit=self.n_shapes
        )
        n, failed = summary["n_shapes"], summary["n_failed"]
        value = (summary["iou_mean"] or 0.0) * (n - failed) / n
        metrics = {
            k: summary[k] for k in ("iou_mean", "iou_part_mean", "n_shapes", "n_bad", "n_failed", "seconds")
        }
        return value, metrics


def _device(accelerator: str) -> str:
    """The device of `overfit.accelerator` (Lightning's `gpu` is CUDA here)."""
    return str(resolve_device("cuda" if accelerator == "gpu" else accelerator, "overfit.accelerator"))
