"""Layout of a field's parameters as one flat vector per shape, and the exact flatten/unflatten.

The flat vector is expert-major: expert 0's tensors (layer 0 weight, layer 0 bias, layer 1 weight, ...),
then expert 1's, so one expert is one contiguous slice (hybrids copy slices) and every block
(expert, layer, tensor) is one diffusion token. Batched parameters are a dict
`layer{l}.weight` -> (B, E, out, in), `layer{l}.bias` -> (B, E, out), nn.Linear orientation.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import torch

from shd.errors import InputError
from shd.fields.config import FieldConfig
from shd.fields.encoding import encoded_dim

_KEY = re.compile(r"^layer(\d+)\.(weight|bias)$")


@dataclass(frozen=True)
class Block:
    """One tensor of one expert inside the flat vector."""

    name: str
    expert: int
    part: str | None
    layer: int
    tensor: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Layout:
    n_experts: int
    blocks: tuple[Block, ...]

    @property
    def dim(self) -> int:
        return sum(b.size for b in self.blocks)

    @property
    def expert_size(self) -> int:
        return self.dim // self.n_experts

    def keys(self) -> list[tuple[str, tuple[int, ...], int]]:
        """(param key, per-expert shape, offset inside one expert's slice), in flat order."""
        return [(f"layer{b.layer}.{b.tensor}", b.shape, b.offset) for b in self.blocks if b.expert == 0]

    def to_json(self) -> list[dict]:
        return [{**asdict(b), "shape": list(b.shape), "size": b.size} for b in self.blocks]

    @classmethod
    def from_json(cls, blocks: list[dict]) -> Layout:
        """Rebuild from a manifest's block list; the expert-major regularity is checked."""
        try:
            parsed = tuple(
                Block(
                    b["name"],
                    int(b["expert"]),
                    b.get("part"),
                    int(b["layer"]),
                    b["tensor"],
                    tuple(int(s) for s in b["shape"]),
                    int(b["offset"]),
                )
                for b in blocks
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("manifest blocks", f"malformed block entry ({exc})") from None
        layout = cls(max(b.expert for b in parsed) + 1, parsed)
        _check_regular(layout)
        return layout


def make_layout(config: FieldConfig, parts: list[str] | None = None) -> Layout:
    """Blocks of a field; `parts` names the experts (semantic fields) for the manifest."""
    widths = [encoded_dim(config.n_freqs), *config.hidden, 1]
    per_expert: list[tuple[int, str, tuple[int, ...]]] = []
    for layer, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        per_expert += [(layer, "weight", (fan_out, fan_in)), (layer, "bias", (fan_out,))]
    blocks, offset = [], 0
    for e in range(config.n_experts):
        part = parts[e] if (parts and config.semantic and e < len(parts)) else None
        for layer, tensor, shape in per_expert:
            blocks.append(Block(f"expert{e}.layer{layer}.{tensor}", e, part, layer, tensor, shape, offset))
            offset += math.prod(shape)
    layout = Layout(config.n_experts, tuple(blocks))
    return layout


def param_count(config: FieldConfig) -> int:
    return make_layout(config).dim


def unflatten(vec: torch.Tensor, layout: Layout) -> dict[str, torch.Tensor]:
    """(B, D) flat vectors -> batched parameter dict of *views* (gradients flow back into `vec`)."""
    if vec.dim() != 2 or vec.shape[1] != layout.dim:
        raise ValueError(f"expected (B, {layout.dim}) flat parameters, got {tuple(vec.shape)}")
    per_expert = vec.view(vec.shape[0], layout.n_experts, layout.expert_size)
    out = {}
    for key, shape, off in layout.keys():
        out[key] = per_expert[..., off : off + math.prod(shape)].unflatten(-1, shape)
    return out


def flatten(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Batched parameter dict -> (B, D) flat vectors in layout order (exact inverse of `unflatten`)."""
    order = sorted(params, key=_key_order)
    first = params[order[0]]
    return torch.cat([params[k].reshape(first.shape[0], first.shape[1], -1) for k in order], -1).flatten(1)


def _key_order(key: str) -> tuple[int, int]:
    m = _KEY.match(key)
    if m is None:
        raise ValueError(f"not a field parameter key: {key!r}")
    return int(m.group(1)), 0 if m.group(2) == "weight" else 1


def _check_regular(layout: Layout) -> None:
    size = layout.expert_size
    ref = [(b.layer, b.tensor, b.shape, b.offset) for b in layout.blocks if b.expert == 0]
    for e in range(layout.n_experts):
        got = [(b.layer, b.tensor, b.shape, b.offset - e * size) for b in layout.blocks if b.expert == e]
        if got != ref:
            raise InputError("manifest blocks", f"expert {e} does not repeat expert 0's block layout")
    flat = sorted((b.offset, b.size) for b in layout.blocks)
    if any(a[0] + a[1] != b[0] for a, b in zip(flat, flat[1:], strict=False)) or flat[0][0] != 0:
        raise InputError("manifest blocks", "blocks do not tile the flat vector")
