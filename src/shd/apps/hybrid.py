"""Hybrid shapes: each part's expert taken from parent A or B, then optionally harmonized.

Stitching copies whole expert slices, so without harmonization the hybrid's experts are bit-identical
to the parents' ones. Experts fitted to different shapes need not agree where parts meet (a wing root
inside one fuselage and outside another); harmonizing noises the stitched weights to t = s*T and
denoises them back with the model (SDEdit), trading some fidelity to the parents for coherence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from shd.apps.config import DEFAULTS, AppsConfig
from shd.apps.outputs import OutputFolder, mesh_all, part_cd
from shd.apps.parents import Parent, expert_mask, part_indices, part_names, resolve_parents
from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError
from shd.fields.weight_set import WeightSet


@dataclass
class Hybrid:
    """Parents, which parent each part came from ('a' or 'b'), stitched (D,) and harmonized (n, D)."""

    parent_a: Parent
    parent_b: Parent
    sources: dict[str, str]
    stitched: torch.Tensor
    harmonized: torch.Tensor | None


def assign_parts(
    parts: Sequence[str],
    category: str,
    parts_a: str | Sequence[str] | None,
    parts_b: str | Sequence[str] | None,
) -> dict[str, str]:
    """part -> 'a' | 'b'. Parts named for neither parent come from A; one part named for both is an error."""
    from_a = part_indices(parts_a, parts, category, "parts_a")
    from_b = part_indices(parts_b, parts, category, "parts_b")
    both = [parts[i] for i in from_a if i in from_b]
    if both:
        raise InputError("parts_a/parts_b", f"{', '.join(both)} named for both parents; name each part once")
    return {p: ("b" if i in from_b else "a") for i, p in enumerate(parts)}


def stitch(a: torch.Tensor, b: torch.Tensor, from_b: torch.Tensor) -> torch.Tensor:
    """A's weights with the scalars under `from_b` (D,) bool copied from B (exact copies)."""
    return torch.where(from_b, b, a)


def harmonize_weights(
    sampler: WeightSampler,
    flat: torch.Tensor,
    strength: float,
    *,
    steps: int = 50,
    category: str | None = None,
    seed: int = 0,
    guidance: float = 1.0,
) -> torch.Tensor:
    """SDEdit (n, D) weights: noise to t = strength*T, denoise with the chain's steps below it."""
    if not 0.0 < strength <= 1.0:
        raise InputError("harmonize", f"must be in (0, 1] to harmonize, got {strength}")
    if not sampler.schedule.timesteps(steps, strength=strength):
        raise InputError(
            "harmonize",
            f"{strength} with {steps} DDIM steps leaves no denoising step below t = "
            f"{strength * sampler.schedule.T:g}; raise the strength or the steps",
        )
    return sampler.sdedit(
        flat, strength=strength, steps=steps, category=category, seed=seed, guidance=guidance
    )


def make_hybrid(
    sampler: WeightSampler,
    parent_a: Parent,
    parent_b: Parent,
    sources: dict[str, str],
    *,
    harmonize: float = 0.2,
    n: int = 1,
    steps: int = 50,
    seed: int = 0,
    guidance: float = 1.0,
) -> Hybrid:
    """Stitch the parents per part, then (harmonize > 0) `n` harmonized variants, seeds seed..seed+n-1."""
    if parent_a.category != parent_b.category:
        raise InputError(
            "parents",
            f"mix categories ({parent_a.source} is {parent_a.category}, "
            f"{parent_b.source} is {parent_b.category})",
        )
    if n < 1:
        raise InputError("n", f"must be >= 1, got {n}")
    if harmonize == 0 and n > 1:
        raise InputError(
            "n",
            f"{n} hybrids without harmonization would be {n} identical copies; harmonize (> 0) for variants",
        )
    experts = [i for i, src in enumerate(sources.values()) if src == "b"]
    stitched = stitch(parent_a.flat, parent_b.flat, expert_mask(sampler, experts))
    harmonized = None
    if harmonize > 0:
        batch = stitched.unsqueeze(0).expand(n, -1).contiguous()
        # one call, one generator: row i is a different draw (the seed fixes the whole batch)
        harmonized = harmonize_weights(
            sampler, batch, harmonize, steps=steps, category=parent_a.category, seed=seed, guidance=guidance
        )
    return Hybrid(parent_a, parent_b, dict(sources), stitched, harmonized)


def hybrid_fidelity(
    hybrid: Hybrid,
    meshes_a,
    meshes_b,
    stitched_mesh,
    harmonized_meshes,
    parts: Sequence[str],
    cfg: AppsConfig,
) -> dict[str, Any]:
    """CD of each hybrid part to the same part of the parent it came from, before and after harmonizing."""

    def per_part(mesh) -> dict[str, float | None]:
        a, b = part_cd(mesh, meshes_a, parts, cfg), part_cd(mesh, meshes_b, parts, cfg)
        return {p: (a if src == "a" else b)["chamfer"][p] for p, src in hybrid.sources.items()}

    return {
        "stitched": per_part(stitched_mesh),
        "harmonized": [per_part(m) for m in harmonized_meshes],
        # yardstick: how different the two parents' parts are in the first place
        "parent_a_vs_parent_b": part_cd(meshes_a, meshes_b, parts, cfg)["chamfer"],
    }


def run_hybrid(
    sampler: WeightSampler,
    out: str | Path,
    *,
    parts_a: str | Sequence[str] | None = None,
    parts_b: str | Sequence[str] | None = None,
    parent_a: str = "sample:0",
    parent_b: str = "sample:1",
    weights: WeightSet | None = None,
    n: int = 1,
    harmonize: float | None = None,
    category: str | None = None,
    cfg: AppsConfig = DEFAULTS,
) -> dict[str, Any]:
    """`shd hybrid`: resolve the parents, stitch, harmonize, mesh, render the strip
    (parent A | parent B | stitched | harmonized...), write meshes, weights and `summary.json`."""
    from shd.eval.render import render_strip

    harmonize = cfg.harmonize if harmonize is None else harmonize
    if not 0.0 <= harmonize <= 1.0:
        raise InputError("harmonize", f"must be in [0, 1], got {harmonize}")
    pa, pb = resolve_parents(
        [parent_a, parent_b], sampler, weights, category=category, steps=cfg.steps, guidance=cfg.guidance
    )
    parts = part_names(pa.category, weights)
    sources = assign_parts(parts, pa.category, parts_a, parts_b)
    result = make_hybrid(
        sampler,
        pa,
        pb,
        sources,
        harmonize=harmonize,
        n=n,
        steps=cfg.steps,
        seed=cfg.seed,
        guidance=cfg.guidance,
    )
    harmonized = list(result.harmonized) if result.harmonized is not None else []
    rows = [pa.flat, pb.flat, result.stitched, *harmonized]
    meshes = mesh_all(torch.stack(rows), sampler.layout, sampler.field, cfg)
    names = ["parent_a", "parent_b", "hybrid_stitched"] + [f"hybrid_{i:02d}" for i in range(len(rows) - 3)]
    folder = OutputFolder(out, cfg, parts)
    files = folder.meshes(meshes, names)
    tensors = {"parent_a": pa.flat, "parent_b": pb.flat, "stitched": result.stitched}
    if result.harmonized is not None:
        tensors["harmonized"] = result.harmonized
    weights_file = folder.weights(tensors, {"sources": sources, "harmonize": harmonize})
    short = "+".join(f"{p}:{s.upper()}" for p, s in sources.items())
    captions = [f"A {pa.source}", f"B {pb.source}", "stitched"] + [
        f"harmonized s={harmonize:g} #{i}" for i in range(len(rows) - 3)
    ]
    render_strip(
        meshes,
        folder.root / "strip.png",
        captions=captions,
        part_names=parts,
        title=f"hybrid {pa.category}: {short}",
    )
    return folder.summary(
        {
            "command": "hybrid",
            "category": pa.category,
            "parents": {"a": pa.describe(), "b": pb.describe()},
            "sources": sources,
            "harmonize": harmonize,
            "steps": cfg.steps,
            "seed": cfg.seed,
            "n": n,
            "meshes": files,
            "png": "strip.png",
            "weights": weights_file,
            "part_cd_to_source": hybrid_fidelity(
                result, meshes[0], meshes[1], meshes[2], meshes[3:], parts, cfg
            ),
        }
    )
