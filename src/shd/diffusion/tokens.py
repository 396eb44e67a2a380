"""Flat weight vectors <-> one token per parameter block, and the per-block linear maps.

Every block (expert, layer, tensor) of the weight-set layout is one token (reference: 4 experts x 8
tensors = 32). Blocks have different sizes (27*60 weights ... one bias), so each has its own linear
encoder and decoder; blocks of the same size (the same tensor of every expert, and equally sized
tensors of different layers) are one group whose maps run as one batched matmul with separate weights.
Splitting into groups is a fixed permutation of the flat vector, so flat -> tokens -> flat is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from shd.fields.layout import Layout


@dataclass(frozen=True)
class TokenGroup:
    """Tokens whose blocks have `size` scalars, in layout order."""

    size: int
    tokens: tuple[int, ...]


class TokenLayout:
    """Which scalars of the flat vector make each token, grouped by block size."""

    def __init__(self, layout: Layout):
        self.layout = layout
        blocks = layout.blocks
        self.n_tokens = len(blocks)
        sizes: dict[int, list[int]] = {}
        for i, b in enumerate(blocks):
            sizes.setdefault(b.size, []).append(i)
        self.groups = tuple(TokenGroup(s, tuple(t)) for s, t in sizes.items())
        # the permutation that puts the flat vector in group order (each group: (G, size) row-major)
        self.perm = torch.cat(
            [torch.arange(blocks[t].offset, blocks[t].offset + g.size) for g in self.groups for t in g.tokens]
        )
        self.inverse = torch.empty_like(self.perm)
        self.inverse[self.perm] = torch.arange(len(self.perm))
        # token ids in group order, and the inverse (token i sits at `token_slot[i]` in group order)
        self.group_order = torch.tensor([t for g in self.groups for t in g.tokens])
        self.token_slot = torch.empty_like(self.group_order)
        self.token_slot[self.group_order] = torch.arange(self.n_tokens)
        n_layers = max(b.layer for b in blocks) + 1
        self.n_parts = layout.n_experts
        self.n_kinds = 2 * n_layers  # (layer, weight | bias)
        self.part_ids = torch.tensor([b.expert for b in blocks])
        self.kind_ids = torch.tensor([2 * b.layer + (b.tensor == "bias") for b in blocks])

    @property
    def dim(self) -> int:
        return self.layout.dim

    def split(self, flat: torch.Tensor, perm: torch.Tensor | None = None) -> list[torch.Tensor]:
        """(B, D) -> one (B, G, size) tensor per group (`perm`: this layout's `perm` on flat's device)."""
        grouped = flat.index_select(1, perm if perm is not None else self.perm.to(flat.device))
        sections = [len(g.tokens) * g.size for g in self.groups]
        return [
            p.unflatten(1, (len(g.tokens), g.size))
            for p, g in zip(grouped.split(sections, 1), self.groups, strict=True)
        ]

    def merge(
        self, parts: list[torch.Tensor], inverse: torch.Tensor | None = None, perm: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Inverse of `split`: one (B, G, size) tensor per group -> (B, D) (`inverse`, `perm`: this
        layout's on the parts' device)."""
        grouped = torch.cat([p.flatten(1) for p in parts], 1)
        if inverse is None or perm is None:
            inverse, perm = self.inverse.to(grouped.device), self.perm.to(grouped.device)
        return permute(grouped, 1, inverse, perm)

    def scalar_mask(self, tokens: list[int]) -> torch.Tensor:
        """(D,) bool: the scalars of the given tokens (for inpainting: which ones to keep)."""
        mask = torch.zeros(self.dim, dtype=torch.bool)
        for t in tokens:
            b = self.layout.blocks[t]
            mask[b.offset : b.offset + b.size] = True
        return mask

    def expert_tokens(self, experts: list[int]) -> list[int]:
        """Token ids of whole experts (a hybrid keeps or replaces experts)."""
        return [i for i, b in enumerate(self.layout.blocks) if b.expert in experts]


class _Permutation(torch.autograd.Function):
    """`x.index_select(dim, index)` for a permutation `index`, whose gradient is the gather by the
    inverse permutation. index_select's own backward is a scatter-add with atomics that torch.compile
    leaves to ATen (bf16: 2 ms of the reference net's 94 ms training step on an H100); a gather it fuses."""

    @staticmethod
    def forward(x: torch.Tensor, dim: int, index: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        return x.index_select(dim, index)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, ctx.dim, _, inverse = inputs
        ctx.save_for_backward(inverse)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inverse,) = ctx.saved_tensors
        return grad.index_select(ctx.dim, inverse), None, None, None


def permute(x: torch.Tensor, dim: int, index: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """`x.index_select(dim, index)` where `index` is a permutation and `inverse` its inverse."""
    return _Permutation.apply(x, dim, index, inverse)


def register_permutations(module: nn.Module, tokens: TokenLayout) -> None:
    """The layout's permutations (`perm`, `group_order`) and their inverses as buffers of `module`: on
    its device, so no host-to-device copy (and sync) per forward; not saved (the layout defines them)."""
    for name in ("perm", "inverse", "group_order", "token_slot"):
        module.register_buffer(name, getattr(tokens, name).clone(), persistent=False)


class GroupedLinear(nn.Module):
    """G separate linear maps of the same size applied to (B, G, fan_in) as one batched matmul."""

    def __init__(self, groups: int, fan_in: int, fan_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default scale
        self.weight = nn.Parameter(torch.empty(groups, fan_in, fan_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, fan_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.baddbmm(self.bias.unsqueeze(1), x.transpose(0, 1), self.weight)
        return out.transpose(0, 1)


class BlockEncoder(nn.Module):
    """(B, D) flat vectors -> (B, N, width) tokens in layout order, one linear map per block."""

    def __init__(self, tokens: TokenLayout, width: int):
        super().__init__()
        self.tokens = tokens
        self.maps = nn.ModuleList(GroupedLinear(len(g.tokens), g.size, width) for g in tokens.groups)
        register_permutations(self, tokens)

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        parts = self.tokens.split(flat, self.perm)
        out = torch.cat([m(p) for m, p in zip(self.maps, parts, strict=True)], 1)
        return permute(out, 1, self.token_slot, self.group_order)


class BlockDecoder(nn.Module):
    """(B, N, width) tokens -> (B, D) flat vectors, one linear map per block."""

    def __init__(self, tokens: TokenLayout, width: int):
        super().__init__()
        self.tokens = tokens
        self.maps = nn.ModuleList(GroupedLinear(len(g.tokens), width, g.size) for g in tokens.groups)
        register_permutations(self, tokens)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        grouped = permute(tokens, 1, self.group_order, self.token_slot)
        sections = [len(g.tokens) for g in self.tokens.groups]
        parts = [m(p) for m, p in zip(self.maps, grouped.split(sections, 1), strict=True)]
        return self.tokens.merge(parts, self.inverse, self.perm)
