"""What a sampling request is and how it is served (the pyfunc's `predict` and `shd sample` alike)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError
from shd.eval.meshing import REFERENCE_LEVEL, MeshResult
from shd.eval.reconstruct import mesh_weights


@dataclass(frozen=True)
class SampleRequest:
    """What to generate; the defaults are the CLI's."""

    n: int = 1
    seed: int = 0
    steps: int = 50
    category: str | None = None
    guidance: float = 1.0
    meshes: bool = False
    resolution: int = 64
    level: float = REFERENCE_LEVEL

    def __post_init__(self) -> None:
        checks = (
            (self.n >= 1, "n", "must be >= 1"),
            (self.steps >= 1, "steps", "must be >= 1"),
            (self.resolution >= 2, "resolution", "must be >= 2"),
        )
        for ok, key, problem in checks:
            if not ok:
                raise InputError(f"request.{key}", f"{problem}, got {getattr(self, key)!r}")

    @classmethod
    def parse(cls, model_input: Any, defaults: dict[str, Any] | None = None) -> SampleRequest:
        """A request from a dict (scalars or one-element lists) or the first row of a DataFrame."""
        if hasattr(model_input, "to_dict") and hasattr(model_input, "columns"):
            rows = model_input.to_dict(orient="records")
            if len(rows) != 1:
                raise InputError("request", f"expected one row, got {len(rows)}")
            model_input = rows[0]
        if not isinstance(model_input, dict):
            raise InputError(
                "request", f"expected a dict or a one-row DataFrame, got {type(model_input).__name__}"
            )
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(model_input) - set(known))
        if unknown:
            raise InputError(f"request.{unknown[0]}", f"unknown key; expected some of {sorted(known)}")
        values = dict(defaults or {})
        for key, value in model_input.items():
            if isinstance(value, list | tuple | np.ndarray):
                if len(value) != 1:
                    raise InputError(f"request.{key}", f"expected one value, got {len(value)}")
                value = value[0]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue  # DataFrame cells left empty
            values[key] = value
        casts = {
            "n": int,
            "seed": int,
            "steps": int,
            "resolution": int,
            "guidance": float,
            "level": float,
            "meshes": _as_bool,
            "category": str,
        }
        try:
            return cls(**{k: casts[k](v) for k, v in values.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise InputError("request", str(exc)) from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def generate(sampler: WeightSampler, request: SampleRequest) -> tuple[torch.Tensor, list[MeshResult]]:
    """Sample `request.n` weight vectors and, when asked, mesh them (failed meshes keep their status)."""
    category = request.category
    if category is None and not sampler.conditional and len(sampler.categories) == 1:
        category = sampler.categories[0]
    weights = sampler.sample(
        request.n, steps=request.steps, category=category, seed=request.seed, guidance=request.guidance
    )
    if not request.meshes:
        return weights, []
    meshes = mesh_weights(
        weights,
        sampler.layout,
        sampler.field,
        resolution=request.resolution,
        level=request.level,
        device=sampler.device,
    )
    return weights, meshes


MAX_ROUNDS = 4  # sampling rounds that redraw empty meshes before giving up


def generate_surfaces(
    sampler: WeightSampler,
    request: SampleRequest,
    *,
    redraw_empty: bool = True,
    max_rounds: int = MAX_ROUNDS,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[tuple[torch.Tensor, MeshResult]], int]:
    """Up to `request.n` (weights row, mesh) pairs and how many empty samples were redrawn.

    An occasional sample's field has no surface at the level; with `redraw_empty` it is dropped and
    drawn again in the next round (round r samples with seed + r, so the result is reproducible), for at
    most `max_rounds` rounds. Without it every sample is kept, empty meshes included. `progress(1)` is
    called per kept sample.
    """
    request = replace(request, meshes=True)
    kept: list[tuple[torch.Tensor, MeshResult]] = []
    discarded = 0
    for round_ in range(max_rounds if redraw_empty else 1):
        weights, meshes = generate(
            sampler, replace(request, n=request.n - len(kept), seed=request.seed + round_)
        )
        for row, mesh in zip(weights, meshes, strict=True):
            if mesh.ok or not redraw_empty:
                kept.append((row, mesh))
                if progress is not None:
                    progress(1)
            else:
                discarded += 1
        if len(kept) == request.n:
            break
    return kept, discarded


def mesh_dict(mesh: MeshResult) -> dict[str, Any]:
    return {
        "vertices": mesh.vertices,
        "faces": mesh.faces,
        "face_labels": mesh.face_labels,
        "status": mesh.status,
    }
