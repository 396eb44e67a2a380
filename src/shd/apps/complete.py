"""Part completion: keep some experts of a parent, generate the others to fit them.

The missing experts' tokens start from noise; at every denoising step the kept tokens are replaced by
the parent's, forward-noised to that step (RePaint), and with resampling each step is repeated R
times so the generated parts can adapt to the kept ones. The kept experts of the output are copied
from the parent, so they are bit-identical to it (the model's normalize/denormalize round trip would
otherwise change their last bits); optional harmonization afterwards moves them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shd.apps.config import DEFAULTS, AppsConfig
from shd.apps.hybrid import harmonize_weights
from shd.apps.outputs import OutputFolder, mesh_all, part_cd
from shd.apps.parents import expert_mask, part_indices, part_names, resolve_parents
from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError
from shd.eval.meshing import MeshResult
from shd.fields.weight_set import WeightSet

# a part whose fits reach less than this mean IoU is named as the likely reason it is generated empty
POOR_PART_IOU = 0.5


def complete_parts(
    sampler: WeightSampler,
    parents: torch.Tensor,
    keep: Sequence[int],
    category: str,
    *,
    n: int = 1,
    steps: int = 50,
    resample: int = 3,
    seed: int = 0,
    guidance: float = 1.0,
    harmonize: float = 0.0,
) -> torch.Tensor:
    """(P*n, D): `n` completions of each parent row (P, D), keeping experts `keep`, the rest inpainted.

    Row p*n + i is completion i of parent p. Without harmonization the kept experts equal the parent's
    bit for bit.
    """
    if parents.ndim != 2 or parents.shape[1] != sampler.layout.dim:
        raise InputError(
            "parents", f"expected (P, {sampler.layout.dim}) weight vectors, got {tuple(parents.shape)}"
        )
    if not keep:
        raise InputError("keep", "name at least one part to keep (nothing kept is plain sampling)")
    if len(set(keep)) >= sampler.layout.n_experts:
        raise InputError("keep", "every part is kept: nothing left to generate")
    if n < 1:
        raise InputError("n", f"must be >= 1, got {n}")
    mask = expert_mask(sampler, keep)
    rows = parents.repeat_interleave(n, 0)
    filled = sampler.inpaint(
        rows, mask, steps=steps, category=category, seed=seed, guidance=guidance, resample=resample
    )
    out = torch.where(mask, rows, filled)
    if harmonize > 0:
        out = harmonize_weights(
            sampler, out, harmonize, steps=steps, category=category, seed=seed + 1, guidance=guidance
        )
    return out


def part_faces(mesh: MeshResult, n_parts: int) -> list[int]:
    """Faces labelled with each part (arg-max expert at the face); zeros for a failed mesh."""
    if not mesh.ok:
        return [0] * n_parts
    return np.bincount(mesh.face_labels, minlength=n_parts)[:n_parts].tolist()


def same_mesh(a: MeshResult, b: MeshResult) -> bool:
    return a.ok and b.ok and np.array_equal(a.faces, b.faces) and np.array_equal(a.vertices, b.vertices)


def empty_parts_warning(
    empty: Sequence[str],
    n_same: int,
    n: int,
    parts: Sequence[str],
    category: str,
    weights: WeightSet | None,
    level: float,
) -> str | None:
    """Why a completion can look like its parent: the generated parts have no surface. A model learns
    that from its training fits when they lack the part (at the CPU budget the airplane tail fin is
    never fitted: part IoU 0), so the fits' mean part IoU is named when the weight set is at hand."""
    if not empty:
        return None
    text = f"{', '.join(empty)} came out empty in every completion (no surface at level {level:.3g})"
    if n_same:
        text += f"; {n_same} of {n} completions mesh exactly like the parent"
    if weights is not None:
        rows = [weights.record(s).get("part_iou") or [] for s in weights.ids(category=category)]
        means = {}
        for p in empty:  # None: the part is absent from that shape (a chair without arms)
            known = [row[parts.index(p)] for row in rows if len(row) == len(parts)]
            known = [v for v in known if v is not None]
            if known:
                means[p] = float(np.mean(known))
        poor = {p: v for p, v in means.items() if v < POOR_PART_IOU}
        if poor:
            listed = ", ".join(f"{p} {v:.2f}" for p, v in poor.items())
            return (
                f"{text}. The model generates these parts empty because its training fits lack them: "
                f"mean part IoU of the {category} fits: {listed} (fit longer or raise overfit.min_part_iou)"
            )
    return f"{text}: the model generated these parts empty"


def run_complete(
    sampler: WeightSampler,
    out: str | Path,
    *,
    source: str,
    keep: str | Sequence[str],
    weights: WeightSet | None = None,
    n: int = 1,
    resample: int | None = None,
    harmonize: float = 0.0,
    category: str | None = None,
    cfg: AppsConfig = DEFAULTS,
) -> dict[str, Any]:
    """`shd complete`: complete one parent `n` times; write meshes, weights, a strip (parent |
    completions) and `summary.json` (kept / generated parts, CD of the kept parts to the parent's)."""
    from shd.eval.render import render_strip

    resample = cfg.resample if resample is None else resample
    (parent,) = resolve_parents(
        [source], sampler, weights, category=category, steps=cfg.steps, guidance=cfg.guidance
    )
    parts = part_names(parent.category, weights)
    kept = part_indices(keep, parts, parent.category, "keep")
    flat = complete_parts(
        sampler,
        parent.flat.unsqueeze(0),
        kept,
        parent.category,
        n=n,
        steps=cfg.steps,
        resample=resample,
        seed=cfg.seed,
        guidance=cfg.guidance,
        harmonize=harmonize,
    )
    mask = expert_mask(sampler, kept)
    identical = bool(torch.equal(flat[:, mask], parent.flat.unsqueeze(0).expand(n, -1)[:, mask]))
    meshes = mesh_all(torch.cat([parent.flat.unsqueeze(0), flat]), sampler.layout, sampler.field, cfg)
    folder = OutputFolder(out, cfg, parts)
    files = folder.meshes(meshes, ["parent"] + [f"completion_{i:02d}" for i in range(n)])
    weights_file = folder.weights(
        {"parent": parent.flat, "completions": flat}, {"keep": [parts[k] for k in kept], "resample": resample}
    )
    kept_names = [parts[k] for k in kept]
    render_strip(
        meshes,
        folder.root / "strip.png",
        part_names=parts,
        captions=[f"parent {parent.source}"] + [f"completion #{i}" for i in range(n)],
        title=f"complete {parent.category}: keep {', '.join(kept_names)}",
    )
    cds = [part_cd(m, meshes[0], parts, cfg)["chamfer"] for m in meshes[1:]]
    kept_cd = [{p: cd[p] for p in kept_names} for cd in cds]
    generated = [p for p in parts if p not in kept_names]
    faces = [dict(zip(parts, part_faces(m, len(parts)), strict=True)) for m in meshes]
    empty = [p for p in generated if all(f[p] == 0 for f in faces[1:])]
    same = [same_mesh(m, meshes[0]) for m in meshes[1:]]
    return folder.summary(
        {
            "command": "complete",
            "category": parent.category,
            "parents": {"source": parent.describe()},
            "kept": kept_names,
            "generated": generated,
            "n": n,
            "steps": cfg.steps,
            "resample": resample,
            "harmonize": harmonize,
            "seed": cfg.seed,
            "kept_bit_identical": identical,
            "meshes": files,
            "png": "strip.png",
            "weights": weights_file,
            "kept_part_cd_to_parent": kept_cd,
            "generated_part_cd_to_parent": [{p: cd[p] for p in generated} for cd in cds],
            "part_faces": {"parent": faces[0], "completions": faces[1:]},
            "empty_generated": empty,
            "same_mesh_as_parent": same,
            "warning": empty_parts_warning(empty, sum(same), n, parts, parent.category, weights, cfg.level),
        }
    )
