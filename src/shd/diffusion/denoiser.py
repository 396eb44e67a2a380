"""The denoiser: a small pre-LN transformer over weight tokens (nanoGPT-style, one readable file).

Input: noisy normalized flat vectors (B, D), integer timesteps (B,), optional category ids (B,).
Each parameter block becomes a token through its own linear encoder, plus learned position, part
(expert) and layer-type embeddings; the timestep (and the category, when conditional) are extra
tokens. Output: the schedule's target (x0, eps or v) as flat vectors through per-block decoders.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from shd.diffusion.config import NetConfig
from shd.diffusion.fused_gelu import gelu_linear
from shd.diffusion.short_attention import short_attention, supports
from shd.diffusion.tokens import BlockDecoder, BlockEncoder, TokenLayout

SDPA_BACKENDS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}


class SelfAttention(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.heads, self.dropout, self.kernel = cfg.heads, cfg.dropout, cfg.attention
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.proj = nn.Linear(cfg.width, cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x)
        p = self.dropout if self.training else 0.0
        if self.kernel == "triton" and supports(qkv, self.heads, p):
            y = short_attention(qkv, self.heads)
        else:
            y = self._library_attention(qkv, p)
        return F.dropout(self.proj(y), self.dropout, self.training)

    def _library_attention(self, qkv: torch.Tensor, p: float) -> torch.Tensor:
        """(B, T, 3C) -> (B, T, C) by PyTorch's SDPA (or the explicit matmul form)."""
        b, n, c = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        q, k, v = qkv.view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.kernel == "matmul":
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
            y = F.dropout(scores.softmax(-1), p, self.training) @ v
        else:
            # forcing a backend only where it exists (CUDA); on CPU SDPA's own choice
            backend = SDPA_BACKENDS.get(self.kernel) if qkv.is_cuda else None
            with sdpa_kernel(backend) if backend is not None else nullcontext():
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return y.transpose(1, 2).reshape(b, n, c)


class MLP(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        hidden = int(cfg.mlp_ratio * cfg.width)
        self.fc = nn.Linear(cfg.width, hidden)
        self.proj = nn.Linear(hidden, cfg.width)
        self.dropout, self.fused = cfg.dropout, cfg.mlp_kernel == "triton"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = gelu_linear(x, self.fc.weight, self.fc.bias, self.fused)
        return F.dropout(self.proj(h), self.dropout, self.training)


class Block(nn.Module):
    """Pre-LN residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.width), SelfAttention(cfg)
        self.ln2, self.mlp = nn.LayerNorm(cfg.width), MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of integer timesteps (B,) -> (B, dim) (DDPM / transformer positions)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float().unsqueeze(1) * freqs
    return torch.cat([angles.sin(), angles.cos()], 1)


class Denoiser(nn.Module):
    def __init__(self, cfg: NetConfig, tokens: TokenLayout):
        super().__init__()
        self.cfg, self.tokens = cfg, tokens
        w, n = cfg.width, tokens.n_tokens
        self.encoder = BlockEncoder(tokens, w)
        self.decoder = BlockDecoder(tokens, w)
        self.n_extra = 1 + (cfg.n_categories > 0)
        self.pos = nn.Parameter(torch.randn(n + self.n_extra, w) * 0.02)
        self.part = nn.Embedding(tokens.n_parts, w)
        self.kind = nn.Embedding(tokens.n_kinds, w)
        self.time = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        # the last category id is the null class (classifier-free guidance)
        self.category = nn.Embedding(cfg.n_categories + 1, w) if cfg.n_categories else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.ln_f = nn.LayerNorm(w)
        self.register_buffer("part_ids", tokens.part_ids.clone(), persistent=False)
        self.register_buffer("kind_ids", tokens.kind_ids.clone(), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """nanoGPT: N(0, 0.02) linears and embeddings, residual projections scaled by 1/sqrt(2 depth)."""
        for mod in [*self.blocks.modules(), *self.time.modules()]:
            if isinstance(mod, nn.Linear):
                nn.init.normal_(mod.weight, std=0.02)
                nn.init.zeros_(mod.bias)
        for name, p in self.blocks.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * self.cfg.depth))
        for emb in (self.part, self.kind, self.category):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)

    @property
    def null_category(self) -> int:
        return self.cfg.n_categories

    def forward(self, x: torch.Tensor, t: torch.Tensor, category: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, D), t (B,) int, category (B,) int or None (null class) -> prediction (B, D)."""
        n = self.tokens.n_tokens
        h = self.encoder(x) + self.pos[:n] + self.part(self.part_ids) + self.kind(self.kind_ids)
        extra = [self.time(timestep_features(t, self.cfg.width)) + self.pos[n]]
        if self.category is not None:
            if category is None:
                category = torch.full_like(t, self.null_category)
            extra.append(self.category(category) + self.pos[n + 1])
        h = torch.cat([h, torch.stack(extra, 1).to(h.dtype)], 1)
        if self.cfg.residual_dtype == "autocast" and torch.is_autocast_enabled(h.device.type):
            h = h.to(torch.get_autocast_dtype(h.device.type))
        for block in self.blocks:
            h = block(h)
        return self.decoder(self.ln_f(h[:, :n]))


def train_flops_per_sample(cfg: NetConfig, tokens: TokenLayout) -> float:
    """Matmul FLOPs of one training sample (forward + backward = 3x forward), for utilization figures."""
    seq = tokens.n_tokens + 1 + (cfg.n_categories > 0)
    w, hidden = cfg.width, int(cfg.mlp_ratio * cfg.width)
    per_token_layer = 2 * (3 * w * w + w * w + 2 * w * hidden)  # qkv, proj, mlp
    attention = 2 * 2 * seq * seq * w  # scores and weighted sum, per layer
    blocks = cfg.depth * (seq * per_token_layer + attention)
    io = 2 * 2 * tokens.dim * w  # per-block encoders and decoders
    return 3.0 * (blocks + io + 2 * 2 * w * w)
