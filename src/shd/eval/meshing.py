"""Fields to part-labelled triangle meshes: dense grid, marching cubes, arg-max expert per face.

A field is a batched callable (`FieldFn`): points (B, P, 3) -> per-expert logits (B, P, E); the shape
logit is the max over experts. Marching cubes is scikit-image's (measured faster than PyMCubes,
NOTES-dependencies.md) run with a mask of the cells that cross the level, which gives the same mesh
about 2.5x faster at 256^3. A shape that cannot be meshed (NaN field, no crossing) comes back as a
`MeshResult` with a status and a reason, never as an exception, so that one bad sample does not stop
an evaluation of hundreds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from skimage.measure import marching_cubes

FieldFn = Callable[[torch.Tensor], torch.Tensor]

# REFERENCE.md test protocol: resolution 356, level logit(0.8).
REFERENCE_RESOLUTION = 356
REFERENCE_LEVEL = math.log(0.8 / 0.2)  # 1.386
STATUSES = ("ok", "empty", "nan")


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


def grid_axis(resolution: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Sample positions along one axis: `resolution` points from -0.5 to 0.5 inclusive."""
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    return torch.linspace(-0.5, 0.5, resolution, device=device, dtype=torch.float32)


def expert_logits(field_fn: FieldFn, points: torch.Tensor) -> torch.Tensor:
    """Call the field and check the (B, P, E) contract, so a wrong field fails with a clear message."""
    out = field_fn(points)
    if out.ndim != 3 or out.shape[:2] != points.shape[:2]:
        raise ValueError(
            f"field returned shape {tuple(out.shape)} for points {tuple(points.shape)}; expected (B, P, E)"
        )
    return out


@torch.inference_mode()
def evaluate_grid(
    field_fn: FieldFn,
    n_shapes: int,
    resolution: int,
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Shape logits (max over experts) on the dense grid, (B, R, R, R) float32 on `device`.

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
        out[:, start : start + len(idx)] = logits.amax(dim=-1).float()
    return out.view(n_shapes, resolution, resolution, resolution)


def _pairwise(t: torch.Tensor, op: Callable) -> torch.Tensor:
    """Combine each 2x2x2 block of grid values: (R, R, R) -> (R-1, R-1, R-1)."""
    for d in range(3):
        n = t.shape[d] - 1
        t = op(t.narrow(d, 0, n), t.narrow(d, 1, n))
    return t


def crossing_mask(inside: torch.Tensor) -> torch.Tensor:
    """Grid points that are a corner of a cell with both inside and outside corners.

    Given as `mask` to scikit-image's marching cubes it skips every other cell and yields the same
    mesh (checked in tests): masking only the cells' first corners drops faces.
    """
    cells = _pairwise(inside, torch.logical_or) & ~_pairwise(inside, torch.logical_and)
    out = cells
    for d in range(3):
        pad = [0] * 6
        pad[2 * (2 - d)] = pad[2 * (2 - d) + 1] = 1  # one cell of padding on both sides of axis d
        padded = torch.nn.functional.pad(out, pad)
        out = padded.narrow(d, 0, out.shape[d] + 1) | padded.narrow(d, 1, out.shape[d] + 1)
    return out


@dataclass
class CroppedVolume:
    """One shape's grid on the host, cropped to the box of its crossing cells, ready for marching cubes."""

    values: np.ndarray  # (X, Y, Z) float32
    mask: np.ndarray  # (X, Y, Z) bool: corners of crossing cells
    offset: np.ndarray  # (3,) index of values[0, 0, 0] in the full grid
    resolution: int


@contextmanager
def _serial_on_cpu(device: torch.device) -> Iterator[None]:
    """One torch thread for the grid passes on a CPU: they are memory-bound, so threads gain little, and
    on a busy machine each op waits for descheduled pool workers (measured: 0.26 s instead of 0.7 ms for
    the crossing mask of a 64^3 grid on 2 shared cores)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def crop_volume(values: torch.Tensor, level: float = REFERENCE_LEVEL) -> CroppedVolume | MeshResult:
    """The device-side half of meshing: checks, crossing mask and crop, then one copy to the host.

    Returns a failed `MeshResult` (NaN or no crossing) instead when there is nothing to mesh. The crop
    spares marching cubes and the copy the grid's empty margins.
    """
    with _serial_on_cpu(values.device):
        return _crop_volume(values, level)


def _crop_volume(values: torch.Tensor, level: float) -> CroppedVolume | MeshResult:
    # one reduction finds any NaN/inf (they propagate through a sum); count them only then
    n_bad = 0
    if not torch.isfinite(values.sum()):
        n_bad = int(values.numel() - torch.isfinite(values).count_nonzero())
    if n_bad:
        return MeshResult.failed("nan", f"{n_bad} of {values.numel()} grid values are NaN or infinite")
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
    mask = crossing_mask(inside)
    box = []
    for d in range(3):
        hit = mask.any(dim=tuple(a for a in range(3) if a != d)).nonzero()
        box.append((int(hit[0]), int(hit[-1]) + 1))
    crop = tuple(slice(lo, hi) for lo, hi in box)
    return CroppedVolume(
        values=values[crop].detach().cpu().numpy(),
        mask=mask[crop].cpu().numpy(),
        offset=np.array([lo for lo, _ in box]),
        resolution=values.shape[0],
    )


def march(volume: CroppedVolume, level: float = REFERENCE_LEVEL) -> MeshResult:
    """The CPU half: scikit-image marching cubes of a cropped grid, vertices in [-0.5, 0.5]^3."""
    try:
        verts, faces, _, _ = marching_cubes(
            volume.values, level, gradient_direction="ascent", mask=volume.mask
        )
    except (RuntimeError, ValueError) as exc:  # scikit-image raises when it finds no surface
        return MeshResult.failed("empty", f"marching cubes found no surface: {exc}")
    if len(faces) == 0:
        return MeshResult.failed("empty", "marching cubes produced no faces")
    verts = ((verts + volume.offset) / (volume.resolution - 1) - 0.5).astype(np.float32)
    return MeshResult(verts, faces.astype(np.int64), np.zeros(len(faces), np.int64))


def mesh_volume(values: torch.Tensor, level: float = REFERENCE_LEVEL) -> MeshResult:
    """Marching cubes of one (R, R, R) grid of shape logits over [-0.5, 0.5]^3 (labels left 0)."""
    cropped = crop_volume(values, level)
    return cropped if isinstance(cropped, MeshResult) else march(cropped, level)


@torch.inference_mode()
def label_faces(
    field_fn: FieldFn,
    meshes: Sequence[MeshResult],
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
) -> None:
    """Set each face's label to the arg-max expert at its centroid, all shapes in shared field calls.

    Shape b of the batch is `meshes[b]`; failed meshes are padded with zeros and left as they are.
    """
    device = torch.device(device)
    centroids = [m.vertices[m.faces].mean(axis=1) if m.ok else np.zeros((0, 3), np.float32) for m in meshes]
    n_max = max(len(c) for c in centroids)
    if n_max == 0:
        return
    padded = np.zeros((len(meshes), n_max, 3), np.float32)
    for b, c in enumerate(centroids):
        padded[b, : len(c)] = c
    points = torch.from_numpy(padded).to(device)
    labels = torch.empty((len(meshes), n_max), dtype=torch.int64, device=device)
    for start in range(0, n_max, chunk_points):
        chunk = points[:, start : start + chunk_points]
        labels[:, start : start + chunk.shape[1]] = expert_logits(field_fn, chunk).argmax(dim=-1)
    labels_np = labels.cpu().numpy()
    for b, m in enumerate(meshes):
        if m.ok:
            m.face_labels = labels_np[b, : len(m.faces)].copy()


def iter_meshes(
    batches: Iterable[tuple[FieldFn, int]],
    *,
    resolution: int = REFERENCE_RESOLUTION,
    level: float = REFERENCE_LEVEL,
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
) -> Iterator[list[MeshResult]]:
    """Mesh (field, n_shapes) batches in turn; yields one `MeshResult` list per batch, in batch order.

    On CUDA the next batch's grid is queued on the GPU before the current batch goes through marching
    cubes on the CPU, so the two overlap; the current batch was cropped and copied to the host before,
    so nothing the CPU waits for sits behind the queued work. A batch's grid is held on `device`
    (4 * R^3 bytes a shape: 180 MB at 356): choose the batch size for the device's memory.
    """
    pending = None
    for field_fn, n_shapes in batches:
        grid = evaluate_grid(field_fn, n_shapes, resolution, chunk_points, device)  # asynchronous on CUDA
        if pending is not None:
            # CPU work (marching cubes) while the GPU fills `grid`
            yield _finish(*pending, resolution, level, chunk_points, device)
        pending = (field_fn, [crop_volume(grid[b], level) for b in range(n_shapes)])
        del grid
    if pending is not None:
        yield _finish(*pending, resolution, level, chunk_points, device)


def _finish(
    field_fn: FieldFn,
    volumes: list[CroppedVolume | MeshResult],
    resolution: int,
    level: float,
    chunk_points: int,
    device: torch.device | str,
) -> list[MeshResult]:
    meshes = [v if isinstance(v, MeshResult) else march(v, level) for v in volumes]
    label_faces(field_fn, meshes, chunk_points, device)
    for m in meshes:
        m.meta.update(resolution=resolution, level=level)
    return meshes


def mesh_fields(
    field_fn: FieldFn,
    n_shapes: int,
    *,
    resolution: int = REFERENCE_RESOLUTION,
    level: float = REFERENCE_LEVEL,
    chunk_points: int = 2**18,
    device: torch.device | str = "cpu",
) -> list[MeshResult]:
    """Mesh the `n_shapes` fields of one batched field; one `MeshResult` per shape, in batch order."""
    return next(
        iter_meshes(
            [(field_fn, n_shapes)],
            resolution=resolution,
            level=level,
            chunk_points=chunk_points,
            device=device,
        )
    )
