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
            write_json(
                self.checkpoint_dir / RUN_FILE,
                {"run_id": logger.run_id, "experiment_id": logger.experiment_id, **self.extra},
            )


class TrainingDiverged(InputError):
    """The loss became NaN/Inf: training stopped before any checkpoint could store diverged weights."""


class FiniteLoss(pl.Callback):
    """Raises `TrainingDiverged` when a training loss was non-finite (any rank: the decision is reduced,
    so no rank waits in a collective). A step only updates a flag on the device; the host reads it
    every `every` batches (the logging interval, where Lightning syncs anyway) and before validation
    and at the epoch's end, ahead of any checkpoint (Lightning runs ModelCheckpoint last), so the last
    checkpoint on disk is the last good one and a rerun resumes from it. Reading it every step would
    stall the GPU each step while the host prepares the next one."""

    def __init__(self, checkpoint_dir: Path, every: int = 10):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.every = every
        self._batches = 0
        self._first_bad: torch.Tensor | None = None  # step of the first non-finite loss; -1: none yet
        self._value: torch.Tensor | None = None  # that loss

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            loss = loss.detach().float()
            if self._first_bad is None or self._first_bad.device != loss.device:
                self._first_bad = torch.full((), -1, dtype=torch.int64, device=loss.device)
                self._value = torch.zeros((), device=loss.device)
            bad = (self._first_bad < 0) & ~torch.isfinite(loss).all()
            self._first_bad = torch.where(bad, trainer.global_step, self._first_bad)
            self._value = torch.where(bad, loss.reshape(-1)[0], self._value)
        self._batches += 1
        if self._batches % self.every == 0:
            self._check(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        step = int(self._first_bad) if self._first_bad is not None else -1
        if not trainer.strategy.reduce_boolean_decision(step >= 0, all=False):
            return
        last = self.checkpoint_dir / "last.ckpt"
        kept = f"the last good checkpoint {last} is kept" if last.exists() else "no checkpoint written yet"
        value = f"{float(self._value)} at step {step}" if step >= 0 else "on another rank"
        raise TrainingDiverged(
            self.checkpoint_dir.parent,
            f"training diverged: non-finite loss {value} "
            f"(epoch {trainer.current_epoch}); {kept}. Check the weight set or lower "
            "diffusion.train.lr (a changed lr trains afresh, the checkpoints moved aside); a rerun "
            "with the same params resumes from the last good checkpoint",
        )


class Throughput(pl.Callback):
    """Training samples per second, timed over runs of consecutive training batches: the clock starts
    (after a device sync) at the first batch after the start or a validation, and stops (after a sync)
    when validation starts or the epoch's batches end. Validation and epoch-end checks are left out
    without a sync every step, which would idle the GPU while the host prepares each next step."""

    def __init__(self) -> None:
        self.samples = 0
        self.seconds = 0.0
        self._start: float | None = None
        self._running = 0  # samples of the batches since the clock started

    @staticmethod
    def _sync(trainer: pl.Trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._start is None:
            self._sync(trainer)
            self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._running += len(batch[0]) * trainer.world_size

    def _stop(self, trainer: pl.Trainer) -> None:
        if self._start is None:
            return
        self._sync(trainer)
        self.seconds += time.perf_counter() - self._start
        self.samples += self._running
        self._start, self._running = None, 0

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop(trainer)

    @property
    def samples_per_s(self) -> float | None:
        return self.samples / self.seconds if self.seconds > 0 else None


class GenerationCheck(pl.Callback):
    """Every `every` epochs (and after the last), on rank zero: sample with the EMA net, mesh at low
    resolution, log MMD/COV/1-NNA per category against the validation clouds and a render grid."""

    def __init__(
        self,
        references: Callable[[], dict[str | None, np.ndarray]],
        every: int,
        n: int,
        steps: int,
        resolution: int,
        guidance: float,
        normalization: str,
        out_dir: Path,
        part_names: dict[str | None, list[str] | None] | None = None,
        seed: int = 0,
    ):
        self._load_references = references  # computed on first use, on rank zero only
        self._references: dict[str | None, np.ndarray] | None = None
        self.every, self.n, self.steps, self.resolution = every, n, steps, resolution
        self.guidance, self.normalization, self.seed = guidance, normalization, seed
        self.out_dir = Path(out_dir)
        self.part_names = part_names or {}
        self.last: dict[str, Any] = {}
        self._last_step = -1

    def _due(self, trainer: pl.Trainer) -> bool:
        return (
            self.every > 0 and not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every == 0
        )

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
            rep = generation_report(
                sampler,
                reference,
                self.n,
                steps=self.steps,
                resolution=self.resolution,
                category=category,
                guidance=self.guidance,
                seed=self.seed,
                normalization=self.normalization,
                render_path=png,
                part_names=self.part_names.get(category),
            )
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
