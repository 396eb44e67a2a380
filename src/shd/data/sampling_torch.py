"""The `sample` stage on a torch device (CUDA): the same sample arrays as `shd.data.sampling`, a shard's
shapes at a time.

Same recipe and rules as the CPU path: area-weighted surface samples (triangle by area, then uniform
barycentric) + Gaussian jitter, uniform points in [-0.5, 0.5]^3, inside where the winding number of the
whole shape is > 0.5, and inside points labelled by the part volume holding them (several or none: the
candidate part whose surface is nearest, exact distance). Winding numbers of every shape of a batch go
through one kernel launch per phase (`shd.data.winding`). Randomness comes from torch generators
seeded per shape and stream, so a shape's samples do not depend on the batch it is in; they differ from
the CPU path's numpy streams (the fingerprint records the device kind).
"""

from __future__ import annotations

import numpy as np
import torch

from shd.data.occupancy import OUTSIDE, label_by_nearest_face, label_by_nearest_point
from shd.data.sampling_config import SamplingConfig, shape_seed
from shd.data.shape import PreparedShape
from shd.data.triangle_distance import mesh_distance_sq
from shd.data.winding import triangles_of, winding_numbers


def _generator(seed: int, shape_id: str, stream: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(shape_seed(seed, shape_id, stream))
    return g


def sample_surface_torch(
    triangles: torch.Tensor, count: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` area-weighted surface points (count, 3) and their face indices, on the triangles' device."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area = torch.linalg.cross(b - a, c - a, dim=-1).norm(dim=-1).double()
    face = torch.multinomial(area, count, replacement=True, generator=gen)
    uv = torch.rand(count, 2, generator=gen, device=triangles.device, dtype=triangles.dtype)
    flip = uv.sum(dim=1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    t = triangles[face]
    points = t[:, 0] + uv[:, :1] * (t[:, 1] - t[:, 0]) + uv[:, 1:] * (t[:, 2] - t[:, 0])
    return points, face


class _Shape:
    """One shape's tensors on the device and its random streams."""

    def __init__(self, shape: PreparedShape, cfg: SamplingConfig, device: torch.device):
        self.shape = shape
        self.device = device
        self.tri = triangles_of(
            torch.as_tensor(shape.vertices, dtype=torch.float32, device=device),
            torch.as_tensor(shape.faces, device=device),
        )
        self.part_ids = [i for i, p in enumerate(shape.parts or []) if p is not None]
        self.part_tri = [
            triangles_of(
                torch.as_tensor(shape.parts[i].vertices, dtype=torch.float32, device=device),
                torch.as_tensor(shape.parts[i].faces, device=device),
            )
            for i in self.part_ids
        ]
        self.gens = [_generator(cfg.seed, shape.shape_id, s, device) for s in range(3)]


def _query_mix(s: _Shape, n_near: int, n_uniform: int, sigma: float, gen: torch.Generator) -> torch.Tensor:
    surface, _ = sample_surface_torch(s.tri, n_near, gen)
    near = surface + sigma * torch.randn(surface.shape, generator=gen, device=s.device)
    uniform = torch.rand(n_uniform, 3, generator=gen, device=s.device) - 0.5
    return torch.cat([near, uniform])


def _nearest_part(s: _Shape, queries: torch.Tensor, holds: torch.Tensor) -> torch.Tensor:
    """Index into s.part_ids of the nearest candidate part surface (candidates: holding parts, or all)."""
    dist = torch.stack([mesh_distance_sq(t, queries) for t in s.part_tri], dim=1)
    candidates = holds.clone()
    candidates[~candidates.any(dim=1)] = True
    return dist.masked_fill(~candidates, float("inf")).argmin(dim=1)


def _labelled_sets(shapes: list[_Shape], sets: list[tuple[int, int, int]], cfg: SamplingConfig, backend: str):
    """Per shape: [(points, occupancy, labels)] for each (n_near, n_uniform, stream) in `sets`."""
    queries = [[_query_mix(s, nn, nu, cfg.sigma, s.gens[st]) for nn, nu, st in sets] for s in shapes]
    flat = [(q, s.tri) for s, qs in zip(shapes, queries, strict=True) for q in qs]
    w = iter(winding_numbers(flat, backend))
    occ = [[next(w) > 0.5 for _ in sets] for _ in shapes]
    # part volumes, for inside points of shapes with part meshes
    part_jobs = [
        (qs[k][occ[i][k]], t)
        for i, (s, qs) in enumerate(zip(shapes, queries, strict=True))
        for k in range(len(sets))
        for t in s.part_tri
    ]
    pw = iter(winding_numbers(part_jobs, backend))
    out = []
    for i, s in enumerate(shapes):
        rows = []
        for k in range(len(sets)):
            q, o = queries[i][k], occ[i][k]
            labels = torch.full((len(q),), OUTSIDE, dtype=torch.int64, device=s.device)
            q_in = q[o]
            if s.part_tri:
                holds = torch.stack([next(pw) > 0.5 for _ in s.part_tri], dim=1)
                present = torch.tensor(s.part_ids, device=s.device)
                lab = present[holds.to(torch.int8).argmax(dim=1)]
                ambiguous = torch.nonzero(holds.sum(dim=1) != 1).flatten()
                if len(ambiguous):
                    lab[ambiguous] = present[_nearest_part(s, q_in[ambiguous], holds[ambiguous])]
                labels[o] = lab
            elif len(q_in):
                q_np = q_in.double().cpu().numpy()
                lab_np = (
                    label_by_nearest_point(s.shape.label_points, s.shape.label_values, q_np)
                    if s.shape.label_points is not None
                    else label_by_nearest_face(s.shape, q_np)
                )
                labels[o] = torch.as_tensor(lab_np, device=s.device)
            rows.append((q, o, labels))
        out.append(rows)
    return out


def sample_shapes_torch(
    shapes: list[PreparedShape], cfg: SamplingConfig, device: torch.device, backend: str = "auto"
) -> list[dict[str, np.ndarray]]:
    """All sample arrays of each shape (see `shd.data.sample_store`), computed on `device`."""
    ss = [_Shape(s, cfg, device) for s in shapes]
    sets = [(cfg.n_near, cfg.n_uniform, 0), (cfg.n_eval_near, cfg.n_eval_uniform, 1)]
    labelled = _labelled_sets(ss, sets, cfg, backend)
    out = []
    for s, ((p, o, lab), (ep, eo, elab)) in zip(ss, labelled, strict=True):
        surf, face = sample_surface_torch(s.tri, cfg.n_surface, s.gens[2])
        face_labels = torch.as_tensor(np.asarray(s.shape.face_labels), device=device)
        arrays = {
            "points": p,
            "occupancy": o.to(torch.uint8),
            "labels": lab.to(torch.int8),
            "eval_points": ep,
            "eval_occupancy": eo.to(torch.uint8),
            "eval_labels": elab.to(torch.int8),
            "surface": surf,
            "surface_labels": face_labels[face].to(torch.int8),
        }
        out.append(
            {
                k: v.cpu().numpy().astype(np.float32) if v.is_floating_point() else v.cpu().numpy()
                for k, v in arrays.items()
            }
        )
    return out
