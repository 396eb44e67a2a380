"""The LightningModule: training and validation losses, EMA, optimizer. The net lives in `denoiser`.

Batches are raw flat weight vectors and category ids; normalization (buffers, saved in checkpoints)
and noising happen here on the device (`objective`). The EMA copy is torch's `AveragedModel` with
`get_ema_multi_avg_fn`, updated once per optimizer step; it is what validation samples and what gets
exported. Hyperparameters are plain dicts, so checkpoints load with `weights_only=True`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch

from shd.diffusion.compile import compile_fn
from shd.diffusion.config import NetConfig, ScheduleConfig, TrainConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.normalization import Normalizer
from shd.diffusion.objective import diffusion_loss, ema_of, lr_factor, make_optimizer, noised_loss
from shd.diffusion.sampler import WeightSampler
from shd.diffusion.schedule import Schedule
from shd.diffusion.tokens import TokenLayout
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout


class DiffusionModule(pl.LightningModule):
    def __init__(
        self,
        net: dict[str, Any],
        schedule: dict[str, Any],
        train: dict[str, Any],
        layout_blocks: list[dict],
        field: dict[str, Any],
        categories: list[str],
        normalization: str = "none",
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.train_cfg = TrainConfig(**train)
        self.schedule_cfg = ScheduleConfig(**schedule)
        self.field = FieldConfig(**field)
        self.categories = list(categories)
        layout = Layout.from_json(layout_blocks)
        self.net = Denoiser(NetConfig(**net), TokenLayout(layout))
        self.ema = ema_of(self.net, self.train_cfg.ema_decay)
        self.normalizer = Normalizer(torch.zeros(layout.dim), torch.ones(layout.dim), normalization)
        self.schedule = Schedule(self.schedule_cfg)
        self._ema_step = -1
        self._total_steps: int | None = None  # optimizer steps of the run, for a decaying lr schedule
        # the training loss, compiled or not (`train.compile`); validation and sampling stay eager
        self._train_loss = compile_fn(noised_loss, self.train_cfg.compile)

    def set_normalization(self, normalizer: Normalizer) -> None:
        """Statistics of the training split (checkpoints restore them as buffers)."""
        self.normalizer.mean.copy_(normalizer.mean)
        self.normalizer.std.copy_(normalizer.std)

    def _loss(
        self,
        net: torch.nn.Module,
        batch: tuple[torch.Tensor, torch.Tensor],
        drop: float,
        generator: torch.Generator | None = None,
        loss_fn: Callable[..., torch.Tensor] = noised_loss,
    ) -> torch.Tensor:
        flat, category = batch
        conditional = self.net.category is not None
        return diffusion_loss(
            net,
            self.schedule,
            self.normalizer,
            flat,
            category if conditional else None,
            drop,
            self.net.null_category,
            generator,
            loss_fn,
        )

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self.net, batch, self.train_cfg.cond_drop, loss_fn=self._train_loss)
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch[0]),
            sync_dist=True,
        )
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.global_step > self._ema_step:  # once per optimizer step (gradient accumulation)
            self.ema.update_parameters(self.net)
            self._ema_step = self.global_step

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Loss of the EMA and the raw net on fixed noise and timesteps (seeded by the batch index)."""
        n = len(batch[0])
        for name, net in (("val/loss", self.ema.module), ("val/loss_raw", self.net)):
            loss = self._loss(net, batch, 0.0, torch.Generator().manual_seed(batch_idx))
            self.log(name, loss, on_epoch=True, batch_size=n, sync_dist=True, prog_bar=name == "val/loss")

    def on_fit_start(self) -> None:
        self.schedule.to(self.device)

    def on_train_start(self) -> None:
        """params.yaml's lr wins over the one restored with a resumed checkpoint's optimizer state, so
        lowering `diffusion.train.lr` after a divergence takes effect when the rerun resumes; under DDP
        each rank's random stream is made its own."""
        factor = self._lr_factor(self.global_step)
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.train_cfg.lr * factor
        for config in self.trainer.lr_scheduler_configs:  # a restored LambdaLR multiplies its own base lr
            config.scheduler.base_lrs = [self.train_cfg.lr] * len(config.scheduler.base_lrs)
        if self.trainer.world_size > 1:
            # every rank was seeded alike (same initial weights); from here each draws its own noise and
            # timesteps, or the ranks would pair their different samples with the same draws
            torch.manual_seed(self.train_cfg.seed + 1_000_003 * self.global_rank)

    def _lr_factor(self, step: int) -> float:
        tc = self.train_cfg
        if tc.warmup_steps == 0 and tc.lr_schedule == "constant":
            return 1.0
        if (
            self._total_steps is None
        ):  # Lightning's estimate (max_steps, else epochs x batches / accumulation)
            self._total_steps = int(self.trainer.estimated_stepping_batches)
        return lr_factor(step, tc.lr_schedule, tc.warmup_steps, self._total_steps)

    def configure_optimizers(self) -> Any:
        """AdamW; with `train.warmup_steps` or a decaying `train.lr_schedule`, also a per-step LambdaLR."""
        fp16 = self._trainer is not None and str(self.trainer.precision).startswith("16")
        optimizer = make_optimizer(
            self.net, self.train_cfg.lr, self.train_cfg.weight_decay, self.device, fused=not fp16
        )
        if self.train_cfg.warmup_steps == 0 and self.train_cfg.lr_schedule == "constant":
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Global-norm clipping of the net's gradients, done here: Lightning's mixed-precision plugin
        refuses to clip for a fused optimizer, though under bf16 (and fp32) there is no scaler and the
        gradients are already true; under fp16 the optimizer is not fused and the plugin clips."""
        if not gradient_clip_val:
            return
        if str(self.trainer.precision).startswith("16"):
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
        else:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), gradient_clip_val)

    def sampler(self) -> WeightSampler:
        """The EMA denoiser as a sampler (shares its weights; for validation and export)."""
        return WeightSampler(
            self.ema.module, self.schedule, self.normalizer, self.field, self.categories, self.device
        )
