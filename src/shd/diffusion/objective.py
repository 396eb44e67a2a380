"""The training objective and EMA, free of Lightning: what the LightningModule and the benchmark share,
so that what is timed is what is trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from shd.diffusion.normalization import Normalizer
from shd.diffusion.schedule import Schedule


def noised_loss(
    net: nn.Module,
    schedule: Schedule,
    normalizer: Normalizer,
    flat: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    category: torch.Tensor | None,
) -> torch.Tensor:
    """MSE of the net's prediction for given draws: the deterministic part of a training step, which
    `train.compile` compiles whole (normalization, noising, net, target, loss fused; the draws stay
    eager, so a compiled run draws the same numbers as an eager one)."""
    x0 = normalizer.normalize(flat.float())
    pred = net(schedule.add_noise(x0, noise, t), t, category)
    return F.mse_loss(pred.float(), schedule.target(x0, noise, t))


def diffusion_loss(
    net: nn.Module,
    schedule: Schedule,
    normalizer: Normalizer,
    flat: torch.Tensor,
    category: torch.Tensor | None,
    drop: float = 0.0,
    null_category: int = 0,
    generator: torch.Generator | None = None,
    loss_fn: Callable[..., torch.Tensor] = noised_loss,
) -> torch.Tensor:
    """MSE of the prediction at uniform timesteps; categories replaced by the null class with prob `drop`.

    Without a generator, noise and timesteps are drawn on the batch's device (training); with a CPU
    generator they are reproducible (validation). `loss_fn`: `noised_loss` or its compiled form.
    """
    if generator is None:
        noise = torch.randn(flat.shape, device=flat.device)
    else:
        noise = torch.randn(flat.shape, generator=generator).to(flat.device)
    t = schedule.sample_t(len(flat), flat.device, generator)
    if category is not None and drop > 0:
        u = (
            torch.rand(len(flat), generator=generator).to(flat.device)
            if generator is not None
            else torch.rand(len(flat), device=flat.device)
        )
        category = torch.where(u < drop, torch.full_like(category, null_category), category)
    return loss_fn(net, schedule, normalizer, flat, noise, t, category)


class WarmupEMA(AveragedModel):
    """torch's AveragedModel with the warmup of diffusers' EMAModel: decay_n = min(decay, (1 + n) /
    (10 + n)) after n updates (the first update copies). Without it a 0.999 EMA of a short run (the CPU
    profile's 640 steps) still holds mostly the random initialization, and its samples are blobs.

    The update keeps the count on the device: torch's `update_parameters` reads `n_averaged` on the host
    twice a step, a GPU->CPU sync that leaves the GPU idle while the next step is launched. Buffers are
    not copied (the denoiser's are constant index tables)."""

    def __init__(self, net: nn.Module, decay: float):
        super().__init__(net, device=next(net.parameters()).device)
        self.decay = decay
        self.requires_grad_(False)  # never optimized, so DDP does not wait for its gradients

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        n = self.n_averaged.to(torch.float32)
        keep = torch.where(n == 0, 0.0, ((1.0 + n) / (10.0 + n)).clamp(max=self.decay))
        averaged = list(self.module.parameters())
        torch._foreach_mul_(averaged, keep)  # lerp takes only a host scalar weight
        current = [p.detach() for p in model.parameters()]
        torch._foreach_add_(averaged, torch._foreach_mul(current, 1.0 - keep))
        self.n_averaged += 1


def ema_of(net: nn.Module, decay: float) -> WarmupEMA:
    """The EMA copy of `net`; the update count lives in its `n_averaged` buffer, so a resume continues it."""
    return WarmupEMA(net, decay)


def lr_factor(step: int, schedule: str, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based): linear warmup from 0 over
    `warmup_steps`, then constant, or a cosine / linear decay to 0 at `total_steps`. A plain function of the
    step, so a resumed run, a LambdaLR and the schedule benchmark's CUDA-graphed loop (lr in a device
    tensor) agree."""
    if step < warmup_steps:
        return step / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    raise ValueError(f"lr schedule {schedule!r} is not one of constant, cosine, linear")


def make_optimizer(
    net: nn.Module, lr: float, weight_decay: float, device: torch.device, fused: bool = True
) -> torch.optim.AdamW:
    """AdamW (reference); the fused CUDA kernel on GPU (one launch for all parameters) unless `fused`
    is off (fp16 with a grad scaler: the fused step unscales internally, after any clipping)."""
    return torch.optim.AdamW(
        net.parameters(), lr=lr, weight_decay=weight_decay, fused=fused and device.type == "cuda"
    )
