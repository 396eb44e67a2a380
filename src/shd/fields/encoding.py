"""NeRF positional encoding, as in the reference occupancy MLP (input included, sin/cos per octave)."""

from __future__ import annotations

import torch


def encoded_dim(n_freqs: int, in_dim: int = 3) -> int:
    """Width of the encoding: 3 + 3*2*n_freqs (27 for the reference's 4 frequencies)."""
    return in_dim * (1 + 2 * n_freqs)


def positional_encoding(x: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """[x, sin(x), cos(x), sin(2x), cos(2x), ..., sin(2^(F-1) x), cos(2^(F-1) x)] on the last axis.

    Same order and frequencies (1, 2, 4, ... without pi) as the reference embedder, so weights are
    interchangeable with reference-trained fields.
    """
    if n_freqs == 0:
        return x
    freqs = 2.0 ** torch.arange(n_freqs, device=x.device, dtype=x.dtype)
    scaled = x.unsqueeze(-2) * freqs.unsqueeze(-1)  # (..., F, 3)
    sincos = torch.stack((scaled.sin(), scaled.cos()), dim=-2)  # (..., F, 2, 3)
    return torch.cat((x, sincos.flatten(-3)), dim=-1)
