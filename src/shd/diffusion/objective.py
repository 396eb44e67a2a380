"""The training objective and EMA, free of Lightning: what the LightningModule and the benchmark share,
so that what is timed is what is trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from shd.diffusion.normalization import Normalizer
from shd.diffusion.schedule import Schedule


def diffusion_loss(net: nn.Module, schedule: Schedule, normalizer: Normalizer, flat: torch.Tensor,
                   category: torch.Tensor | None, drop: float = 0.0, null_category: int = 0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """MSE of the prediction at uniform timesteps; categories replaced by the null class with prob `drop`.

    Without a generator, noise and timesteps are drawn on the batch's device (training); with a CPU
    generator they are reproducible (validation).
    """
    x0 = normalizer.normalize(flat.float())
    if generator is None:
        noise = torch.randn_like(x0)
    else:
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    t = schedule.sample_t(len(x0), x0.device, generator)
    if category is not None and drop > 0:
        u = torch.rand(len(x0), generator=generator).to(x0.device) if generator is not None else \
            torch.rand(len(x0), device=x0.device)
        category = torch.where(u < drop, torch.full_like(category, null_category), category)
    pred = net(schedule.add_noise(x0, noise, t), t, category)
    return F.mse_loss(pred.float(), schedule.target(x0, noise, t))


def ema_warmup_update(decay: float):
    """EMA step for AveragedModel with the warmup of diffusers' EMAModel: decay_n = min(decay,
    (1 + n) / (10 + n)) after n updates. Without it a 0.999 EMA of a short run (the CPU profile's
    640 steps) still holds mostly the random initialization, and its samples are blobs."""

    @torch.no_grad()
    def update(ema_params: list[torch.Tensor], params: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = int(n_averaged)
        torch._foreach_lerp_(ema_params, params, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


def ema_of(net: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy (torch's AveragedModel, warmed up); never optimized, so DDP does not wait for its
    gradients. The update count lives in the model's `n_averaged` buffer, so a resume continues it."""
    ema = AveragedModel(net, multi_avg_fn=ema_warmup_update(decay))
    ema.requires_grad_(False)
    return ema


def make_optimizer(net: nn.Module, lr: float, weight_decay: float, device: torch.device,
                   fused: bool = True) -> torch.optim.AdamW:
    """AdamW (reference); the fused CUDA kernel on GPU (one launch for all parameters) unless `fused`
    is off (fp16 with a grad scaler: the fused step unscales internally, after any clipping)."""
    return torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay,
                             fused=fused and device.type == "cuda")
