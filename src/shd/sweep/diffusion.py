"""Diffusion sweep: train with the trial's denoiser and schedule on the weight set, judged by the
training's own generation check (sample, mesh, MMD against the validation split; 1-NNA and COV are
logged beside it), pruned by Optuna's Lightning callback on the same number at every check."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import torch
from optuna_integration import PyTorchLightningPruningCallback

from shd.diffusion.callbacks import GenerationCheck
from shd.diffusion.config import DiffusionConfig
from shd.diffusion.train import train
from shd.errors import InputError
from shd.fields.weight_set import WeightSet
from shd.sweep.runs import trial_run_name
from shd.sweep.space import merge, nest

SECTION = "diffusion"
MONITOR = "sweep/objective"
WORST = 1.0  # no usable sample: worse than any measured value (the score is below 1)
# epochs without a generation check have no objective to report: expected, not a misnamed metric
warnings.filterwarnings("ignore", message=f"The metric '{MONITOR}' is not in the evaluation logs")


def generation_objective(reports: dict[str, dict[str, Any]]) -> float:
    """Mean over categories of MMD / (1 + MMD) of the generation check; lower is better.

    MMD (each validation shape's Chamfer distance to its nearest generated one) is continuous, so trials
    of the sweep's short budget get distinct scores; 1-NNA, the score of record, sits at its worst
    value 1.0 for most of them (BENCHMARKS.md, sweep objective), which made the best trial noise.
    Squashed into [0, 1) so that a category without a usable sample (WORST) ranks below every other.
    """
    values = []
    for rep in reports.values():
        mmd = rep.get("mmd")
        values.append(mmd / (1.0 + mmd) if mmd is not None and math.isfinite(mmd) and mmd >= 0 else WORST)
    return sum(values) / len(values) if values else WORST


class CheckToMetric(pl.Callback):
    """Puts the objective of a generation check that ran this epoch into `trainer.callback_metrics`
    (where the pruning callback reads it), and removes it on epochs without a check, so a stale value
    is never reported for a later epoch."""

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        check = next(c for c in trainer.callbacks if isinstance(c, GenerationCheck))
        if check.last and check.last["epoch"] == trainer.current_epoch:
            trainer.callback_metrics[MONITOR] = torch.tensor(generation_objective(check.last["reports"]))
        else:
            trainer.callback_metrics.pop(MONITOR, None)


class DiffusionObjective:
    """Minimize the validation generation objective of a (short) training run."""

    section = SECTION
    direction = "minimize"
    metric = "mmd"

    def __init__(
        self,
        params: dict[str, Any],
        fixed: dict[str, Any],
        weight_dir: str | Path,
        sample_dir: str | Path | None,
        experiment: str,
    ):
        self.base = merge(merge(params.get(SECTION) or {}, fixed), {"train": {"experiment": experiment}})
        cfg = DiffusionConfig.from_dict(self.base)  # checks the base before any trial
        self.weight_dir = Path(weight_dir)
        weights = WeightSet.open(self.weight_dir)
        if not weights.ids(split="val"):
            raise InputError(
                self.weight_dir,
                "no good fits in the val split: the diffusion objective is the "
                "generation check against the validation shapes",
            )
        if cfg.train.val_every == 0:
            raise InputError(
                "params.yaml:sweep.diffusion.fixed.train.val_every",
                "must be > 0 (the objective is the generation check)",
            )
        self.sample_dir = Path(sample_dir) if sample_dir is not None else None

    def update(self, values: dict[str, Any]) -> dict[str, Any]:
        return {SECTION: nest(values)}

    def evaluate(
        self, trial: optuna.Trial, section: dict[str, Any], run_id: str, scratch: Path
    ) -> tuple[float, dict[str, Any]]:
        cfg = DiffusionConfig.from_dict(section)
        summary = train(
            self.weight_dir,
            cfg,
            scratch,
            sample_dir=self.sample_dir,
            resume=False,
            run_id=run_id,
            run_name=trial_run_name(trial),
            callbacks=[CheckToMetric(), PyTorchLightningPruningCallback(trial, MONITOR)],
        )
        reports = summary.get("val_generation") or {}
        metrics: dict[str, Any] = {k: summary.get(k) for k in ("val_loss", "train_loss", "seconds", "epochs")}
        for name, rep in reports.items():
            metrics.update({f"{name}.{k}": rep.get(k) for k in ("1-nna", "mmd", "cov", "n_usable")})
        return generation_objective(reports), metrics
