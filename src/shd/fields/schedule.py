"""Per-shape learning-rate schedules and the plateau bookkeeping, vectorized over the active shapes.

Every shape has its own step counter, so shapes that joined the batch later follow their own schedule.
"""

from __future__ import annotations

import math

import torch

from shd.fields.config import OverfitConfig


def scheduled_lr(step: torch.Tensor, plateau_lr: torch.Tensor, cfg: OverfitConfig) -> torch.Tensor:
    """Learning rate (B,) for each shape's current step (B,).

    - plateau: the per-shape value kept by `plateau_update` (reference ReduceLROnPlateau);
    - cosine: linear warmup over `warmup_steps`, then cosine from `lr` to `min_lr` at `max_steps`;
    - onecycle: cosine rise from lr/25 over 30% of `max_steps`, cosine decay to lr/1e4;
    - constant: `lr`.
    """
    if cfg.schedule == "plateau":
        return plateau_lr
    t = step.to(torch.float32)
    if cfg.schedule == "constant":
        return torch.full_like(t, cfg.lr)
    if cfg.schedule == "cosine":
        warm = cfg.lr * (t + 1) / max(cfg.warmup_steps, 1)
        frac = ((t - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1)).clamp(0, 1)
        decay = cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + torch.cos(math.pi * frac))
        return torch.where(t < cfg.warmup_steps, warm, decay)
    rise_steps = 0.3 * cfg.max_steps
    start, end = cfg.lr / 25, cfg.lr / 1e4
    up = (t / rise_steps).clamp(0, 1)
    down = ((t - rise_steps) / max(cfg.max_steps - rise_steps, 1)).clamp(0, 1)
    rising = start + 0.5 * (cfg.lr - start) * (1 - torch.cos(math.pi * up))
    falling = end + 0.5 * (cfg.lr - end) * (1 + torch.cos(math.pi * down))
    return torch.where(t < rise_steps, rising, falling)


def peak_step(cfg: OverfitConfig) -> int:
    """First step after the schedule's rise: a rising lr makes the loss worse on purpose."""
    if cfg.schedule == "cosine":
        return cfg.warmup_steps
    if cfg.schedule == "onecycle":
        return int(0.3 * cfg.max_steps)
    return 0


def plateau_update(
    loss: torch.Tensor,
    best: torch.Tensor,
    bad: torch.Tensor,
    flat: torch.Tensor,
    lr: torch.Tensor,
    cfg: OverfitConfig,
    step: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ...]:
    """One bookkeeping interval of every shape: returns updated (best, bad, flat, lr).

    `bad` counts intervals without relative improvement since the last lr cut (ReduceLROnPlateau,
    which resets it after cutting); `flat` counts them since the last improvement (early stop).
    Non-finite losses never count as improvements. Shapes whose `step` is still before the schedule's
    peak are not tracked yet: otherwise a rise from a good init (first-shape init) reads as a plateau.
    """
    improved = torch.isfinite(loss) & (loss < best * (1 - cfg.plateau_threshold))
    best = torch.where(improved, loss, best)
    bad = torch.where(improved, 0, bad + 1)
    flat = torch.where(improved, 0, flat + 1)
    if step is not None and peak_step(cfg) > 0:
        rising = step < peak_step(cfg)
        best = torch.where(rising, torch.inf, best)
        bad, flat = torch.where(rising, 0, bad), torch.where(rising, 0, flat)
    cut = bad > cfg.plateau_patience
    if cfg.schedule == "plateau":
        lr = torch.where(cut, (lr * cfg.plateau_factor).clamp(min=cfg.min_lr), lr)
    bad = torch.where(cut, 0, bad)
    return best, bad, flat, lr
