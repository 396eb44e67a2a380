"""Part interpolation: one expert blended between two parents, every other expert held fixed.

Blends happen in the model's normalized space (the sampler's normalizer), where blocks of very
different raw scales weigh alike; linear blending there equals linear blending of the raw weights,
spherical (slerp) keeps the blend's norm from sagging midway, as a sample of the model would not.
The frames at t = 0 and t = 1 are the parents' own expert weights, and the other experts are parent
A's, bit-identical, in every frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from shd.apps.config import DEFAULTS, INTERPOLATIONS, AppsConfig
from shd.apps.outputs import OutputFolder, jump_ratio, mesh_all, step_cds
from shd.apps.parents import expert_mask, part_indices, part_names, resolve_parents
from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError
from shd.fields.weight_set import WeightSet


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical blend of two vectors (linear when they are (anti)parallel within `eps`)."""
    a64, b64 = a.double(), b.double()
    cos = torch.dot(a64, b64) / (a64.norm() * b64.norm()).clamp_min(eps)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if torch.sin(theta).abs() < eps:
        return torch.lerp(a64, b64, t).to(a.dtype)
    s = torch.sin(theta)
    return (torch.sin((1 - t) * theta) / s * a64 + torch.sin(t * theta) / s * b64).to(a.dtype)


def interpolate_part(
    sampler: WeightSampler,
    a: torch.Tensor,
    b: torch.Tensor,
    expert: int,
    frames: int = 8,
    method: str = "linear",
) -> torch.Tensor:
    """(frames, D): parent A's weights with expert `expert` blended from A's (t = 0) to B's (t = 1)."""
    if method not in INTERPOLATIONS:
        raise InputError(f"method '{method}'", f"expected one of {', '.join(INTERPOLATIONS)}")
    if frames < 2:
        raise InputError("frames", f"an interpolation needs at least 2 frames, got {frames}")
    mask = expert_mask(sampler, [expert])
    norm = sampler.normalizer
    mean, std = norm.mean.detach().cpu()[mask], norm.std.detach().cpu()[mask]
    za, zb = (a[mask].float() - mean) / std, (b[mask].float() - mean) / std
    out = a.unsqueeze(0).repeat(frames, 1)
    for k in range(frames):
        if k in (0, frames - 1):
            out[k, mask] = (a if k == 0 else b)[mask]  # the parents' own weights, exactly
            continue
        t = k / (frames - 1)
        z = torch.lerp(za, zb, t) if method == "linear" else slerp(za, zb, t)
        out[k, mask] = z * std + mean
    return out


def run_interpolate(
    sampler: WeightSampler,
    out: str | Path,
    *,
    a: str,
    b: str,
    part: str,
    weights: WeightSet | None = None,
    frames: int | None = None,
    methods: tuple[str, ...] = INTERPOLATIONS,
    category: str | None = None,
    cfg: AppsConfig = DEFAULTS,
) -> dict[str, Any]:
    """`shd interpolate`: per method, mesh every frame, write the meshes, a PNG strip and a GIF, and the
    CD between consecutive frames with the jump (largest step CD / mean step CD) in `summary.json`."""
    from shd.eval.render import render_gif, render_strip

    frames = cfg.interp_steps if frames is None else frames
    pa, pb = resolve_parents(
        [a, b], sampler, weights, category=category, steps=cfg.steps, guidance=cfg.guidance
    )
    parts = part_names(pa.category, weights)
    chosen = part_indices(part, parts, pa.category, "part")
    if len(chosen) != 1:
        raise InputError("part", f"name exactly one part of {pa.category} ({', '.join(parts)}), got {part!r}")
    expert = chosen[0]
    folder = OutputFolder(out, cfg, parts)
    ts = [k / (frames - 1) for k in range(frames)]
    tensors, results = {}, {}
    for method in methods:
        flat = interpolate_part(sampler, pa.flat, pb.flat, expert, frames, method)
        tensors[method] = flat
        meshes = mesh_all(flat, sampler.layout, sampler.field, cfg)
        files = folder.meshes(meshes, [f"{method}_{k:02d}" for k in range(frames)])
        captions = [f"t={t:.2f}" for t in ts]
        title = f"{parts[expert]} {method}: {pa.source} -> {pb.source}"
        render_strip(meshes, folder.root / f"{method}.png", captions=captions, part_names=parts, title=title)
        render_gif(
            meshes, folder.root / f"{method}.gif", captions=captions, part_names=parts, frame_ms=cfg.gif_ms
        )
        cds = step_cds(meshes, cfg)
        results[method] = {
            "meshes": files,
            "png": f"{method}.png",
            "gif": f"{method}.gif",
            "step_cd": cds,
            "jump": jump_ratio(cds),
        }
    weights_file = folder.weights(tensors, {"part": parts[expert], "t": ts})
    return folder.summary(
        {
            "command": "interpolate",
            "category": pa.category,
            "parents": {"a": pa.describe(), "b": pb.describe()},
            "part": parts[expert],
            "fixed_parts": [p for p in parts if p != parts[expert]],
            "frames": frames,
            "t": ts,
            "methods": results,
            "weights": weights_file,
        }
    )
