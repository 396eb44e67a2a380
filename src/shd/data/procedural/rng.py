"""Per-shape design streams: a design depends only on (seed, category, index), never on generation order."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np


class Sampler:
    """Thin wrapper over a numpy Generator returning plain Python values (JSON-serializable meta)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def pick(self, options: Sequence[Any], p: Sequence[float] | None = None) -> Any:
        return options[int(self.rng.choice(len(options), p=p))]

    def coin(self, p: float) -> bool:
        return bool(self.rng.uniform() < p)


def shape_rng(seed: int, category: str, index: int) -> np.random.Generator:
    """Per-shape stream: depends only on (seed, category, index), never on generation order."""
    return np.random.default_rng([seed, zlib.crc32(category.encode("utf-8")), index])
