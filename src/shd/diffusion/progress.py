"""Training progress for the stage and CLI output: optimizer steps done, with an ETA (shd.progress).

Lightning's own bar redraws in place, which turns into thousands of lines in DVC's log; this callback
shows a live bar on a terminal and a line every ~10% elsewhere, then one summary line."""

from __future__ import annotations

import lightning.pytorch as pl

from shd.progress import Task


class StepProgress(pl.Callback):
    """Optimizer steps of this fit (a resumed fit counts from where it resumed)."""

    def __init__(self, description: str = "train") -> None:
        self.description = description
        self._task: Task | None = None
        self._step = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total = int(trainer.estimated_stepping_batches)
        self._step = trainer.global_step
        self._task = Task(self.description, max(total - self._step, 0), unit="steps")

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if self._task is not None and trainer.global_step > self._step:
            self._task.advance(trainer.global_step - self._step)
            self._step = trainer.global_step

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close()

    def _close(self) -> None:
        if self._task is not None:
            self._task.close()
            self._task = None
