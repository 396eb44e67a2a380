"""Training callbacks: MLflow run id beside the checkpoints, a stop at the first non-finite loss,
throughput, periodic generation check."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from shd.atomic import write_json
from shd.diffusion.evaluate import generation_report
from shd.errors import InputError

RUN_FILE = "mlflow_run.json"


def read_run_id(checkpoint_dir: Path) -> str | None:
    """The MLflow run the checkpoints in this folder belong to (None: no run recorded yet)."""
    path = checkpoint_dir / RUN_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("run_id")


class RunIdFile(pl.Callback):
    """Writes the logger's run id next to the checkpoints, so a resume logs into the same run."""

    def __init__(self, checkpoint_dir: Path, extra: dict[str, Any] | None = None):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.extra = extra or {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = trainer.logger
        if trainer.is_global_zero and logger is not None and getattr(logger, "run_id", None):
            write_json(self.checkpoint_dir / RUN_FILE, {"run_id": logger.run_id,
                                                         "experiment_id": logger.experiment_id, **self.extra})


class TrainingDiverged(InputError):
    """The loss became NaN/Inf: training stopped before any checkpoint could store diverged weights."""


class FiniteLoss(pl.Callback):
    """Raises `TrainingDiverged` at the first non-finite training loss (any rank: the decision is reduced,
    so no rank waits in a collective). Checkpoints are written at epoch ends, after this check, so the
    last checkpoint on disk is the last good one and a rerun resumes from it."""

    def __init__(self, checkpoint_dir: Path):
        self.checkpoint_dir = Path(checkpoint_dir)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        bad = loss is not None and not bool(torch.isfinite(loss.detach()).all())
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        last = self.checkpoint_dir / "last.ckpt"
        kept = f"the last good checkpoint {last} is kept" if last.exists() else "no checkpoint written yet"
        raise TrainingDiverged(self.checkpoint_dir.parent, f"training diverged: non-finite loss "
                               f"{float(loss) if loss is not None else 'on another rank'} at step "
                               f"{trainer.global_step} (epoch {trainer.current_epoch}); {kept}. Lower "
                               "diffusion.train.lr or check the weight set, then rerun to resume")


class Throughput(pl.Callback):
    """Training samples per second over the training batches (validation and checks excluded)."""

    def __init__(self) -> None:
        self.samples = 0
        self.seconds = 0.0
        self._start: float | None = None

    @staticmethod
    def _sync(trainer: pl.Trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._sync(trainer)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._sync(trainer)
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self.samples += len(batch[0]) * trainer.world_size

    @property
    def samples_per_s(self) -> float | None:
        return self.samples / self.seconds if self.seconds > 0 else None


class GenerationCheck(pl.Callback):
    """Every `every` epochs (and after the last), on rank zero: sample with the EMA net, mesh at low
    resolution, log MMD/COV/1-NNA per category against the validation clouds and a render grid."""

    def __init__(self, references: Callable[[], dict[str | None, np.ndarray]], every: int, n: int, steps: int,
                 resolution: int, guidance: float, normalization: str, out_dir: Path,
                 part_names: dict[str | None, list[str] | None] | None = None, seed: int = 0):
        self._load_references = references  # computed on first use, on rank zero only
        self._references: dict[str | None, np.ndarray] | None = None
        self.every, self.n, self.steps, self.resolution = every, n, steps, resolution
        self.guidance, self.normalization, self.seed = guidance, normalization, seed
        self.out_dir = Path(out_dir)
        self.part_names = part_names or {}
        self.last: dict[str, Any] = {}
        self._last_step = -1

    def _due(self, trainer: pl.Trainer) -> bool:
        return (self.every > 0 and not trainer.sanity_checking
                and (trainer.current_epoch + 1) % self.every == 0)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._due(trainer):
            self.run(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every > 0 and self._last_step != trainer.global_step:
            self.run(trainer, pl_module)

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_step = trainer.global_step
        if not trainer.is_global_zero:
            return
        if self._references is None:
            self._references = self._load_references()
        sampler = pl_module.sampler()
        reports, metrics = {}, {}
        for category, reference in self._references.items():
            name = category or "all"
            png = self.out_dir / f"epoch{trainer.current_epoch:04d}_{name}.png"
            rep = generation_report(sampler, reference, self.n, steps=self.steps, resolution=self.resolution,
                                    category=category, guidance=self.guidance, seed=self.seed,
                                    normalization=self.normalization, render_path=png,
                                    part_names=self.part_names.get(category))
            reports[name] = rep
            for key in ("mmd", "cov", "1-nna", "n_usable"):
                if rep.get(key) is not None:
                    metrics[f"gen/{name}/{key}"] = rep[key]
            logger = trainer.logger
            if logger is not None and hasattr(logger, "run_id"):
                logger.experiment.log_artifact(logger.run_id, str(png), "renders")
        if trainer.logger is not None:
            trainer.logger.log_metrics(metrics, step=trainer.global_step)
        self.last = {"epoch": trainer.current_epoch, "reports": reports}
