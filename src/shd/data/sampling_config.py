"""The `sample` stage's settings and per-shape random streams, shared by the CPU path (`sampling`) and
the device path (`sampling_torch`)."""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np

from shd.data.workers import n_workers
from shd.errors import InputError


@dataclass(frozen=True)
class SamplingConfig:
    n_near: int = 100_000
    n_uniform: int = 100_000
    sigma: float = 0.01
    n_eval_near: int = 10_000
    n_eval_uniform: int = 10_000
    n_surface: int = 2048
    shard_size: int = 32
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda[:i]: where winding numbers run (auto: CUDA when present)
    workers: int = 0  # CPU path: processes sampling shapes in parallel (0: every core)

    def __post_init__(self) -> None:
        n_workers(self.workers, "params.yaml:sample.workers")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("auto", "cpu", "cuda"):
            raise InputError("params.yaml:sample.device", f"expected auto, cpu or cuda, got {self.device!r}")

    def n_workers(self) -> int:
        return n_workers(self.workers, "params.yaml:sample.workers")

    def identity(self) -> dict:
        """What the samples depend on (fingerprint, manifest): not the worker count; the device kind,
        since the CUDA path draws from torch generators instead of numpy's."""
        from shd.devices import resolve_device  # torch: not loaded by the CPU path's workers

        ident = asdict(self)
        del ident["workers"]
        ident["device"] = resolve_device(self.device, "params.yaml:sample.device").type
        return ident


def shape_rng(seed: int, shape_id: str, stream: int) -> np.random.Generator:
    """Per-shape random stream: independent of which other shapes are processed, or in what order."""
    return np.random.default_rng([seed, zlib.crc32(shape_id.encode("utf-8")), stream])


def shape_seed(seed: int, shape_id: str, stream: int) -> int:
    """The same per-shape stream as one integer seed (for torch generators), < 2**63."""
    ss = np.random.SeedSequence([seed, zlib.crc32(shape_id.encode("utf-8")), stream])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
