"""Per-position statistics of the training weights, so every token is denoised at a comparable scale.

Weights of different tensors differ in scale by an order of magnitude (first-layer weights of
27 inputs vs single output biases); "block" standardizes each block by its own mean and std over
the training split, "scalar" each scalar, "none" (the reference) leaves weights as they are. The
statistics are (D,) vectors saved with the model (safetensors) and used to map samples back.
"""

from __future__ import annotations

import torch
from torch import nn

from shd.diffusion.config import NORMALIZATIONS
from shd.errors import InputError
from shd.fields.layout import Layout

_TINY = 1e-6  # a block that never moved (constant over the training split) is only shifted


def fit_stats(
    flat: torch.Tensor, layout: Layout, mode: str, floor: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) vectors (D,) of the training vectors `flat` (S, D) for `mode` in NORMALIZATIONS.

    "scalar": a scalar's std is floored at `floor` x its block's std. Many weights barely move from the
    shared initialization (dead units: exactly constant over the training split), and dividing by their
    tiny std would blow up any other shape's deviation there (held-out shapes, SDEdit inputs).
    """
    if mode not in NORMALIZATIONS:
        raise InputError("train.normalization", f"one of {NORMALIZATIONS}, got {mode!r}")
    flat = flat.double()
    d = layout.dim
    if mode == "none":
        return torch.zeros(d), torch.ones(d)
    if flat.shape[0] < 2:
        raise InputError("train split", f"{mode!r} normalization needs at least 2 training shapes")
    mean, std = torch.empty(d, dtype=torch.float64), torch.empty(d, dtype=torch.float64)
    for b in layout.blocks:
        part = flat[:, b.offset : b.offset + b.size]
        mean[b.offset : b.offset + b.size] = part.mean()
        std[b.offset : b.offset + b.size] = part.std()
    if mode == "scalar":
        mean, std = flat.mean(0), torch.maximum(flat.std(0), floor * std)
    return mean.float(), std.clamp(min=_TINY).float()


class Normalizer(nn.Module):
    """x -> (x - mean) / std and back; the statistics are buffers (they travel with checkpoints)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, mode: str = "none"):
        super().__init__()
        self.mode = mode
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())

    @classmethod
    def fit(cls, flat: torch.Tensor, layout: Layout, mode: str, floor: float = 0.1) -> Normalizer:
        return cls(*fit_stats(flat, layout, mode, floor), mode=mode)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def tensors(self) -> dict[str, torch.Tensor]:
        """For safetensors export."""
        return {"mean": self.mean.detach().cpu().contiguous(), "std": self.std.detach().cpu().contiguous()}
