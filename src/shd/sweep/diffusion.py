"""Diffusion sweep: train with the trial's denoiser and schedule on the weight set, judged by the
training's own generation check (sample, mesh, 1-NNA / MMD against the validation split), pruned by
Optuna's Lightning callback on the same number at every check."""

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
from shd.sweep.space import merge, nest

SECTION = "diffusion"
MONITOR = "sweep/objective"
# MMD breaks 1-NNA ties: scaled into [0, TIE), below one 1-NNA step for up to 1,000 clouds
TIE = 1e-3
WORST = 1.0 + TIE  # no usable sample: worse than any measured value
# epochs without a generation check have no objective to report: expected, not a misnamed metric
warnings.filterwarnings("ignore", message=f"The metric '{MONITOR}' is not in the evaluation logs")


def generation_objective(reports: dict[str, dict[str, Any]]) -> float:
    """Mean over categories of 1-NNA + TIE * MMD / (1 + MMD); lower is better, ideal 1-NNA is 0.5."""
    values = []
    for rep in reports.values():
        nna, mmd = rep.get("1-nna"), rep.get("mmd")
        if nna is None or mmd is None or not (math.isfinite(nna) and math.isfinite(mmd)):
            values.append(WORST)
        else:
            values.append(nna + TIE * mmd / (1.0 + mmd))
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
    metric = "1-nna"

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
            run_name=f"trial-{trial.number}",
            callbacks=[CheckToMetric(), PyTorchLightningPruningCallback(trial, MONITOR)],
        )
        reports = summary.get("val_generation") or {}
        metrics: dict[str, Any] = {k: summary.get(k) for k in ("val_loss", "train_loss", "seconds", "epochs")}
        for name, rep in reports.items():
            metrics.update({f"{name}.{k}": rep.get(k) for k in ("1-nna", "mmd", "cov", "n_usable")})
        return generation_objective(reports), metrics
