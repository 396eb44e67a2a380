"""The `sweep` section of params.yaml: where the study lives and, per kind, its budget and space."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shd.errors import InputError
from shd.sweep.space import Dimension, parse_space

KINDS = ("overfit", "diffusion")
_COMMON = {
    "storage",
    "out_dir",
    "experiment",
    "seed",
    "heartbeat_interval",
    "grace_period",
    "max_failures",
    "poll_seconds",
    *KINDS,
}
_KIND = {"study", "trials", "space", "fixed", "n_shapes", "pruner"}


@dataclass(frozen=True)
class KindConfig:
    """One kind of sweep: the study name, how many finished trials it ends with, the space, the fixed
    overrides of the stage's params section that every trial uses (its budget), and the pruner."""

    kind: str
    study: str
    trials: int
    space: tuple[Dimension, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    n_shapes: int | None = None  # overfit: fit the first n shapes of the fixed splits
    pruner_startup_trials: int = 2  # MedianPruner: trials before any pruning
    pruner_warmup_steps: int = 0  # MedianPruner: epochs before a trial can be pruned


@dataclass(frozen=True)
class SweepConfig:
    storage: str = "sqlite:///sweeps/optuna.db"
    out_dir: str = "sweeps"
    experiment: str = "sweep"
    seed: int = 0
    heartbeat_interval: int = 10  # s between a running trial's heartbeats (RDB storage)
    grace_period: int = 30  # s without a heartbeat after which a running trial is failed (killed worker)
    max_failures: int = 3  # failed trials in one process that stop the sweep (a broken space or setup)
    poll_seconds: float = 2.0  # wait between checks while other workers hold the remaining trials
    kinds: dict[str, KindConfig] = field(default_factory=dict)

    def kind(self, name: str) -> KindConfig:
        if name not in self.kinds:
            raise InputError(f"params.yaml:sweep.{name}", f"missing; a sweep kind is one of {KINDS}")
        return self.kinds[name]


def _int(value: Any, at: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InputError(at, f"expected an integer >= {low}, got {value!r}")
    return value


def _kind(name: str, raw: Any) -> KindConfig:
    at = f"params.yaml:sweep.{name}"
    if not isinstance(raw, Mapping):
        raise InputError(at, "expected a mapping (study, trials, space, fixed, ...)")
    unknown = sorted(set(raw) - _KIND)
    if unknown:
        raise InputError(f"{at}.{unknown[0]}", f"unknown key; expected some of: {', '.join(sorted(_KIND))}")
    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, Mapping):
        raise InputError(f"{at}.fixed", "expected a mapping of params overrides")
    pruner = raw.get("pruner") or {}
    if not isinstance(pruner, Mapping) or set(pruner) - {"startup_trials", "warmup_steps"}:
        raise InputError(f"{at}.pruner", "expected a mapping with startup_trials and/or warmup_steps")
    n_shapes = raw.get("n_shapes")
    return KindConfig(
        kind=name,
        study=str(raw.get("study", name)),
        trials=_int(raw.get("trials", 4), f"{at}.trials", 1),
        space=parse_space(raw.get("space"), f"{at}.space"),
        fixed=dict(fixed),
        n_shapes=None if n_shapes is None else _int(n_shapes, f"{at}.n_shapes", 1),
        pruner_startup_trials=_int(pruner.get("startup_trials", 2), f"{at}.pruner.startup_trials", 0),
        pruner_warmup_steps=_int(pruner.get("warmup_steps", 0), f"{at}.pruner.warmup_steps", 0),
    )


def sweep_config(params: Mapping[str, Any]) -> SweepConfig:
    """Build from the params dict; unknown keys and malformed spaces are InputErrors."""
    raw = params.get("sweep")
    if not isinstance(raw, Mapping):
        raise InputError("params.yaml:sweep", "missing or not a mapping (see the repository's params.yaml)")
    unknown = sorted(set(raw) - _COMMON)
    if unknown:
        raise InputError(
            f"params.yaml:sweep.{unknown[0]}", f"unknown key; expected some of: {', '.join(sorted(_COMMON))}"
        )
    base = SweepConfig()
    values = {k: raw.get(k, getattr(base, k)) for k in _COMMON - set(KINDS)}
    for key in ("heartbeat_interval", "grace_period", "max_failures"):
        values[key] = _int(values[key], f"params.yaml:sweep.{key}", 1)
    return SweepConfig(**values, kinds={k: _kind(k, raw[k]) for k in KINDS if k in raw})
