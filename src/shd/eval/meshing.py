"""Fields to part-labelled triangle meshes: one function for every caller, sparse where it can be.

A field is a batched callable (`FieldFn`): points (B, P, 3) -> per-expert logits (B, P, E). Its shape
logit is `field.combine(logits)` when the field has one (`MoEField`: max or log-sum-exp, as its
config says), else the max over experts. A field that can bound itself over boxes (`shape_bounds`:
every field made from weights) is evaluated coarse to fine (shd.eval.sparse_grid: only bricks the
level set can cross, by a provable interval bound); any other callable on the dense grid. Both go
through the same torch marching cubes (shd.eval.marching) on the field's device, whose output is
canonical, so the dense grid (`method="dense"`) is the sparse path's exact oracle. Faces are labelled
by the arg-max expert at their centroid. A shape that cannot be meshed (NaN field, no crossing) comes
back as a `MeshResult` with a status and a reason, never as an exception, so that one bad sample
does not stop an evaluation of hundreds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from shd.eval.marching import march_bricks
from shd.eval.sparse_grid import DEFAULT_SIZES, evaluate_band, grid_axis

FieldFn = Callable[[torch.Tensor], torch.Tensor]

# REFERENCE.md test protocol: resolution 356, level logit(0.8).
REFERENCE_RESOLUTION = 356
REFERENCE_LEVEL = math.log(0.8 / 0.2)  # 1.386
STATUSES = ("ok", "empty", "nan")
METHODS = ("auto", "sparse", "dense")


@dataclass
class MeshResult:
    """One shape's mesh in [-0.5, 0.5]^3; faces are counter-clockwise seen from outside."""

    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int64
    face_labels: np.ndarray  # (F,) int64: arg-max expert at the face centroid
    status: str = "ok"  # one of STATUSES
    reason: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failed(cls, status: str, reason: str) -> MeshResult:
        return cls(
            vertices=np.zeros((0, 3), np.float32),
            faces=np.zeros((0, 3), np.int64),
            face_labels=np.zeros((0,), np.int64),
            status=status,
            reason=reason,
        )


def status_counts(results: Sequence[MeshResult]) -> dict[str, int]:
    """How many meshes ended in each status (every status listed, zeros included)."""
    counts = Counter(r.status for r in results)
    return {s: counts.get(s, 0) for s in STATUSES}


def expert_logits(field_fn: FieldFn, points: torch.Tensor) -> torch.Tensor:
    """Call the field and check the (B, P, E) contract, so a wrong field fails with a clear message."""
    out = field_fn(points)
    if out.ndim != 3 or out.shape[:2] != points.shape[:2]:
        raise ValueError(
            f"field returned shape {tuple(out.shape)} for points {tuple(points.shape)}; expected (B, P, E)"
        )
    return out


def shape_logits(field_fn: FieldFn, logits: torch.Tensor) -> torch.Tensor:
    """Expert logits (..., E) -> shape logit (...): the field's own `combine`, else the max."""
    combine = getattr(field_fn, "combine", None)
    return combine(logits) if combine is not None else logits.amax(dim=-1)


def is_bounded(field_fn: FieldFn) -> bool:
    """Whether the field bounds itself over boxes, so that it can be evaluated sparsely."""
    return callable(getattr(field_fn, "shape_bounds", None))


@torch.inference_mode()
def evaluate_grid(
    field_fn: FieldFn,
    n_shapes: int,
    resolution: int,
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Shape logits on the dense grid, (B, R, R, R) float32 on `device`: the sparse path's oracle.

    Grid points are made per chunk on the device from the flat index, so only the output grid is ever
    held in full; `chunk_points` is the number of points per shape in one field call.
    """
    device = torch.device(device)
    axis = grid_axis(resolution, device)
    total = resolution**3
    out = torch.empty((n_shapes, total), dtype=torch.float32, device=device)
    for start in range(0, total, chunk_points):
        idx = torch.arange(start, min(start + chunk_points, total), device=device)
        r = resolution
        pts = torch.stack([axis[idx // r**2], axis[(idx // r) % r], axis[idx % r]], dim=-1)
        logits = expert_logits(field_fn, pts.unsqueeze(0).expand(n_shapes, -1, -1).contiguous())
        out[:, start : start + len(idx)] = shape_logits(field_fn, logits).float()
    return out.view(n_shapes, resolution, resolution, resolution)


def _nan_result(values: torch.Tensor) -> MeshResult | None:
    n_bad = int(values.numel() - torch.isfinite(values).count_nonzero())
    if n_bad:
        return MeshResult.failed("nan", f"{n_bad} of {values.numel()} grid values are NaN or infinite")
    return None


def _march(values: torch.Tensor, origins: torch.Tensor, resolution: int, level: float) -> MeshResult:
    verts, faces = march_bricks(values, origins, resolution, level)
    if len(faces) == 0:
        return MeshResult.failed("empty", "no grid cell crosses the level")
    return MeshResult(verts, faces, torch.zeros(len(faces), dtype=torch.int64))  # tensors until labelled


def mesh_volume(values: torch.Tensor, level: float = REFERENCE_LEVEL) -> MeshResult:
    """Marching cubes of one dense (R, R, R) grid of shape logits over [-0.5, 0.5]^3 (labels left 0)."""
    result = _mesh_dense(values, level)
    _to_host(result)
    return result


def _mesh_dense(values: torch.Tensor, level: float) -> MeshResult:
    if not torch.isfinite(values.sum()):  # one reduction finds any NaN/inf; count them only then
        bad = _nan_result(values)
        if bad is not None:
            return bad
    inside = values > level
    n_inside = int(inside.count_nonzero())
    if n_inside == 0:
        return MeshResult.failed(
            "empty", f"field below level {level:.3f} everywhere (max {values.max():.3f})"
        )
    if n_inside == values.numel():
        return MeshResult.failed(
            "empty", f"field above level {level:.3f} everywhere (min {values.min():.3f})"
        )
    origin = torch.zeros((1, 3), dtype=torch.int64, device=values.device)
    return _march(values.unsqueeze(0), origin, values.shape[0], level)


def _mesh_sparse(
    field_fn: FieldFn, n_shapes: int, resolution: int, level: float, chunk_points: int, device: torch.device
) -> list[MeshResult]:
    band = evaluate_band(field_fn, n_shapes, resolution, level, DEFAULT_SIZES, chunk_points, device)
    out = []
    for b in range(n_shapes):
        values, origins = band.of(b)
        if len(values) == 0:  # every brick on one side; neighbours share points, so all on the same one
            side = "above" if bool(band.above[b]) else "below"
            out.append(
                MeshResult.failed("empty", f"field {side} level {level:.3f} everywhere (by its bound)")
            )
            continue
        bad = _nan_result(values)
        out.append(bad if bad is not None else _march(values, origins, resolution, level))
        out[-1].meta["bricks"] = len(values)
    return out


def _to_host(mesh: MeshResult) -> None:
    for name in ("vertices", "faces", "face_labels"):
        value = getattr(mesh, name)
        if isinstance(value, torch.Tensor):
            setattr(mesh, name, value.cpu().numpy())


@torch.inference_mode()
def label_faces(
    field_fn: FieldFn,
    meshes: Sequence[MeshResult],
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
) -> None:
    """Set each face's label to the arg-max expert at its centroid, all shapes in shared field calls.

    Shape b of the batch is `meshes[b]`; failed meshes are padded with zeros and left as they are.
    Vertices and faces may be numpy arrays or tensors (on any device).
    """
    device = torch.device(device)
    centroids = []
    for m in meshes:
        if not m.ok:
            centroids.append(torch.zeros((0, 3), device=device))
            continue
        v, f = (torch.as_tensor(x).to(device) for x in (m.vertices, m.faces))
        centroids.append(v[f].mean(dim=1))
    n_max = max(len(c) for c in centroids)
    if n_max == 0:
        return
    points = torch.zeros((len(meshes), n_max, 3), device=device)
    for b, c in enumerate(centroids):
        points[b, : len(c)] = c
    labels = torch.empty((len(meshes), n_max), dtype=torch.int64, device=device)
    for start in range(0, n_max, chunk_points):
        chunk = points[:, start : start + chunk_points]
        labels[:, start : start + chunk.shape[1]] = expert_logits(field_fn, chunk).argmax(dim=-1)
    labels_np = labels.cpu().numpy()
    for b, m in enumerate(meshes):
        if m.ok:
            m.face_labels = labels_np[b, : len(m.faces)].copy()


@torch.inference_mode()
def mesh_batch(
    field_fn: FieldFn,
    n_shapes: int,
    *,
    resolution: int = REFERENCE_RESOLUTION,
    level: float = REFERENCE_LEVEL,
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
    method: str = "auto",
) -> list[MeshResult]:
    """Mesh the `n_shapes` fields of one batched field; one `MeshResult` per shape, in batch order.

    `method`: "sparse" (coarse to fine; needs a bounded field), "dense" (the full grid: the oracle;
    the batch's grids are held on `device`, 4 R^3 bytes a shape: 180 MB at 356) or "auto" (sparse
    when the field is bounded).
    """
    if method not in METHODS:
        raise ValueError(f"meshing method must be one of {METHODS}, got {method!r}")
    device = torch.device(device)
    if n_shapes == 0:
        return []
    sparse = method == "sparse" or (method == "auto" and is_bounded(field_fn))
    if sparse and not is_bounded(field_fn):
        raise ValueError(
            "sparse meshing needs a field with shape_bounds (e.g. shd.eval.field_bounds.MoEField)"
        )
    if sparse:
        meshes = _mesh_sparse(field_fn, n_shapes, resolution, level, chunk_points, device)
    else:
        grid = evaluate_grid(field_fn, n_shapes, resolution, chunk_points, device)
        meshes = [_mesh_dense(grid[b], level) for b in range(n_shapes)]
        del grid
    label_faces(field_fn, meshes, chunk_points, device)
    for m in meshes:
        _to_host(m)
        m.meta.update(resolution=resolution, level=level, method="sparse" if sparse else "dense")
    return meshes


def iter_meshes(
    batches: Iterable[tuple[FieldFn, int]],
    *,
    resolution: int = REFERENCE_RESOLUTION,
    level: float = REFERENCE_LEVEL,
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
    method: str = "auto",
) -> Iterator[list[MeshResult]]:
    """Mesh (field, n_shapes) batches in turn; yields one `MeshResult` list per batch, in batch order."""
    for field_fn, n_shapes in batches:
        yield mesh_batch(
            field_fn,
            n_shapes,
            resolution=resolution,
            level=level,
            chunk_points=chunk_points,
            device=device,
            method=method,
        )


mesh_fields = mesh_batch  # the name callers and tests use
