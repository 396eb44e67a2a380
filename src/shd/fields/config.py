"""Field and fitting configurations (plain frozen dataclasses, so they fingerprint and log cleanly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from shd.errors import InputError

COMBINES = ("max", "lse")
SCHEDULES = ("plateau", "cosine", "onecycle", "constant")
INITS = ("seed", "first_shape")
PRECISIONS = ("fp32", "tf32", "bf16")


def _check(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise InputError(where, problem)


@dataclass(frozen=True)
class FieldConfig:
    """One occupancy field: `n_experts` equal MLPs (27 -> hidden... -> 1) on a shared encoding.

    `semantic=True` is the mixture of experts (expert e is trained on `label == e`); `semantic=False`
    with one expert is the plain HyperDiffusion occupancy MLP trained on occupancy alone.
    """

    n_experts: int = 4
    hidden: tuple[int, ...] = (60, 60, 60)
    n_freqs: int = 4
    semantic: bool = True
    combine: str = "max"
    temperature: float = 1.0
    whole_weight: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        _check(self.n_experts >= 1, "field.n_experts", f"must be >= 1, got {self.n_experts}")
        _check(
            len(self.hidden) >= 1 and min(self.hidden) >= 1,
            "field.hidden",
            f"needs at least one positive width, got {self.hidden}",
        )
        _check(self.n_freqs >= 0, "field.n_freqs", f"must be >= 0, got {self.n_freqs}")
        _check(self.combine in COMBINES, "field.combine", f"one of {COMBINES}, got {self.combine!r}")
        _check(self.temperature > 0, "field.temperature", f"must be > 0, got {self.temperature}")
        _check(
            self.semantic or self.n_experts == 1,
            "field.n_experts",
            "a non-semantic (single) field has exactly one expert",
        )


FIELD_PRESETS: dict[str, FieldConfig] = {
    # reference semantic field: 4 equal experts of width 60 (36,244 parameters)
    "moe_equal": FieldConfig(),
    # reference HyperDiffusion MLP: 128 x 3 on occupancy (36,737 parameters)
    "single": FieldConfig(n_experts=1, hidden=(128, 128, 128), semantic=False),
}


@dataclass(frozen=True)
class OverfitConfig:
    """How every shape is fitted. Defaults: the schedule measured to reach the IoU target with the fewest
    training points (benchmarks/bench_overfit.py sweep): one-cycle over 1,500 steps of 2,048 points from
    the first shape's fit (the reference's shared init), TF32 matmuls on CUDA (no IoU drop measured)."""

    field: FieldConfig = FieldConfig()
    lr: float = 1e-2
    schedule: str = "onecycle"
    points_per_step: int = 2048
    max_steps: int = 1500
    warmup_steps: int = 50
    min_lr: float = 1e-5
    # bookkeeping interval: losses/IoU are averaged and early stop is decided every `check_every` steps
    check_every: int = 50
    # plateau schedule (reference: patience 10 epochs, factor 0.8) and plateau early stop (50 epochs)
    plateau_patience: int = 2
    plateau_factor: float = 0.8
    stop_patience: int = 10
    plateau_threshold: float = 1e-3
    init: str = "first_shape"
    seed: int = 0
    splits: tuple[str, ...] = ("train", "val", "test")
    precision: str = "tf32"
    # a fit is bad (kept on disk, excluded downstream) below these held-out IoUs
    min_iou: float = 0.9
    min_part_iou: float = 0.5
    shard_size: int = 256
    max_batch: int = 4096

    def __post_init__(self) -> None:
        if isinstance(self.field, dict):
            object.__setattr__(self, "field", FieldConfig(**self.field))
        object.__setattr__(self, "splits", tuple(self.splits))
        _check(self.schedule in SCHEDULES, "schedule", f"one of {SCHEDULES}, got {self.schedule!r}")
        _check(self.init in INITS, "init", f"one of {INITS}, got {self.init!r}")
        _check(self.precision in PRECISIONS, "precision", f"one of {PRECISIONS}, got {self.precision!r}")
        for name in ("lr", "points_per_step", "max_steps", "check_every", "shard_size", "max_batch"):
            _check(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        _check(0 < self.plateau_factor < 1, "plateau_factor", "must be in (0, 1)")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OverfitConfig:
        """Build from params.yaml-style values; `field` may be a preset name or a dict."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        _check(not unknown, f"overfit.{','.join(unknown)}", f"unknown option(s); valid: {sorted(known)}")
        values = dict(values)
        spec = values.get("field", "moe_equal")
        if isinstance(spec, str):
            _check(spec in FIELD_PRESETS, "overfit.field", f"preset one of {sorted(FIELD_PRESETS)}")
            values["field"] = FIELD_PRESETS[spec]
        elif isinstance(spec, dict):
            base = FIELD_PRESETS[spec.get("preset", "moe_equal")]
            values["field"] = replace(base, **{k: v for k, v in spec.items() if k != "preset"})
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fit_fingerprint_fields(self) -> dict[str, Any]:
        """Options that change fitted weights; chunking and quality thresholds do not (per-shape RNG)."""
        d = self.to_dict()
        for k in ("max_batch", "min_iou", "min_part_iou"):
            d.pop(k)
        return d
