"""Watertight surfaces from imperfect inputs: holed/double-sided mesh soups and oriented point clouds.

Occupancy sampling needs a closed, consistently oriented surface. ManifoldPlus (the reference's repair)
is not installable here, so both inputs go through one robust route: a generalized winding number
(libigl `fast_winding_number`) evaluated on a grid, then marching cubes at 0.5. `grid_field_to_mesh`
is that shared step; `make_watertight` (mesh soups) and `points_to_mesh` (oriented points) only differ
in the field they hand it.

Mesh soups need two extra fixes before their winding number means anything:
- ShapeNet meshes are often double-sided (every triangle twice, opposite orientation), which cancels
  the winding number to 0 everywhere: duplicate triangles are dropped and each connected piece is
  re-oriented consistently (trimesh `fix_normals`); the field uses |w| so an inverted piece still counts.
- Single-sheet parts (a tail fin made of one layer of triangles) enclose no volume: a thin shell of
  `shell_voxels` voxels around every triangle keeps them as thin slabs. This offsets every surface
  outward by about that much (0.75 voxel by default; ManifoldPlus at depth 8 offsets similarly).
Point clouds get the same kind of shell (half the point spacing) for sparsely sampled thin parts.
"""

from __future__ import annotations

from collections.abc import Callable

import igl
import numpy as np
import trimesh
from scipy.spatial import cKDTree
from skimage import measure

from shd.errors import InputError

REPAIR_METHODS = ("as_is", "winding_grid", "manifold")  # what `make_watertight` reports having done
REPAIRS = ("winding_grid", "manifold")  # what it may be asked to do for a mesh that needs repair
# measured (BENCHMARKS.md real_shapes): the manifold is 5x faster with ~0.02 higher volume IoU on closed
# soups, but floods through any hole wider than its octree cells and leaves that part a hollow shell (an
# open unit cube keeps 10% of its volume, a holed chair 41% of its smallest part); the grid fills holes
DEFAULT_REPAIR = "winding_grid"
MANIFOLD_LEAVES_PER_CELL = (
    1.25  # octree leaves per grid cell^2 (resolution 128 -> 20,480 leaves, pcu's default)
)
LEVEL = 0.5  # winding number 0.5: inside/outside boundary of a closed surface
MARGIN_VOXELS = 3  # empty cells around the input so every marching-cubes surface closes
BOX_SLACK_VOXELS = 1.5  # field kept up to this far outside the given box
MIN_COMPONENT_FRACTION = 0.005  # drop marching-cubes specks below this share of the largest volume

Field = Callable[[np.ndarray], np.ndarray]


def grid_field_to_mesh(
    field: Field,
    lo: np.ndarray,
    hi: np.ndarray,
    resolution: int,
    where: str = "surface",
    min_component_fraction: float = MIN_COMPONENT_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample `field` (about 1 inside, 0 outside) on a grid over [lo, hi] and extract its 0.5 surface.

    `resolution` is the number of cells along the longest side of the box; the grid adds a margin so
    the surface always closes. Returns a watertight, outward-oriented (V, F); an empty or open result
    is an `InputError` naming `where`.
    """
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    origin, h, shape = _grid_geometry(lo, hi, resolution)
    axes = [origin[i] + h * np.arange(shape[i]) for i in range(3)]
    queries = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = np.asarray(field(queries), dtype=np.float64).reshape(shape)
    if not np.isfinite(values).all():
        raise InputError(where, "winding-number field has non-finite values (degenerate input geometry)")
    values *= _box_mask(axes, lo, hi, BOX_SLACK_VOXELS * h)
    if values.max() <= LEVEL:
        raise InputError(where, "empty surface: no grid point is inside (winding number never above 0.5)")
    verts, faces, _, _ = measure.marching_cubes(values, LEVEL, spacing=(h, h, h), gradient_direction="ascent")
    verts = verts.astype(np.float64) + origin
    verts, faces = _keep_main_components(verts, faces.astype(np.int64), min_component_fraction)
    return _check_closed(verts, faces, where)


def _box_mask(axes: list[np.ndarray], lo: np.ndarray, hi: np.ndarray, slack: float) -> np.ndarray:
    """1 inside the input's box (+ slack), else 0: what encloses a surface lies within its bounding box,
    so field far outside (bad normals, open soups) is noise; the zero border also closes every surface."""
    inside = [(a >= lo[i] - slack) & (a <= hi[i] + slack) for i, a in enumerate(axes)]
    return inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]


def _grid_geometry(
    lo: np.ndarray, hi: np.ndarray, resolution: int
) -> tuple[np.ndarray, float, tuple[int, ...]]:
    """Origin, cell size and point counts of a grid of `resolution` cells over the box plus a margin."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if resolution < 8:
        raise InputError("grid_resolution", f"got {resolution}, expected at least 8 cells")
    h = float((hi - lo).max()) / resolution
    if not np.isfinite(h) or h <= 0:
        raise InputError("grid bounds", f"degenerate box {lo.tolist()} .. {hi.tolist()}")
    origin = lo - MARGIN_VOXELS * h
    shape = tuple(int(n) for n in np.ceil((hi - lo) / h).astype(int) + 2 * MARGIN_VOXELS + 1)
    return origin, h, shape


def _keep_main_components(
    verts: np.ndarray, faces: np.ndarray, min_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Drop tiny disconnected specks (field noise) but keep real separate pieces such as engines."""
    mesh = trimesh.Trimesh(verts, faces, process=False)
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(faces))
    n = int(labels.max()) + 1 if len(labels) else 0
    if n <= 1:
        return verts, faces
    volumes = np.array([abs(_signed_volume(verts, faces[labels == c])) for c in range(n)])
    keep = volumes >= min_fraction * volumes.max()
    kept = faces[keep[labels]]
    used, inverse = np.unique(kept, return_inverse=True)
    return verts[used], inverse.reshape(-1, 3).astype(np.int64)


def _signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _check_closed(verts: np.ndarray, faces: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Orient outward (positive volume) and insist on a closed, consistently wound surface."""
    if len(faces) == 0:
        raise InputError(where, "empty surface after repair")
    if _signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1].copy()
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if not (mesh.is_watertight and mesh.is_winding_consistent):
        raise InputError(where, "repaired surface is not watertight (open or non-manifold edges)")
    return verts, faces


def is_closed_manifold(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """True when the mesh can be used as is: watertight, consistently wound, positive volume."""
    if len(faces) == 0:
        return False
    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=True)
    return bool(mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0)


def _shells_overlap(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """True when part of the closed surface lies inside it (intersecting or nested closed shells,
    e.g. separately modelled parts): kept as is, those inner faces would be sampled as surface.

    A face centroid's winding number is 1/2 from its own flat face plus 1 per shell enclosing it.
    """
    if len(faces) < 8:
        return False
    centroids = vertices[faces].mean(axis=1)
    w = igl.fast_winding_number(np.ascontiguousarray(vertices), np.ascontiguousarray(faces), centroids)
    return bool((np.abs(w) > 1.0).any())


def make_watertight(
    vertices: np.ndarray,
    faces: np.ndarray,
    resolution: int = 128,
    shell_voxels: float = 0.75,
    where: str = "mesh",
    repair: str = DEFAULT_REPAIR,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (V, F, method): the mesh itself when already closed ("as_is") and no shell lies inside
    another, else a grid repair (the union of overlapping shells).

    "as_is" still merges coincident vertices and drops degenerate and duplicate triangles (a
    double-sided closed mesh keeps its first copy of each triangle).

    The repair ("winding_grid") evaluates |winding number| of the cleaned soup, max'd with a thin
    shell around every triangle (see the module docstring), on a grid of `resolution` cells along the
    longest bounding-box side, and extracts the 0.5 surface. `repair="manifold"` instead runs the
    watertight-manifold method of Huang et al. 2018 (point-cloud-utils `make_mesh_watertight`, the
    ManifoldPlus family the reference uses) with an octree of about 1.25 * resolution^2 leaves.
    """
    if repair not in REPAIRS:
        raise InputError("prepare.repair", f"got {repair!r}, expected one of {REPAIRS}")
    verts, tris = _clean_soup(vertices, faces, where)
    if is_closed_manifold(verts, tris) and not _shells_overlap(verts, tris):
        mesh = trimesh.Trimesh(verts, tris, process=True)
        return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64), "as_is"
    if repair == "manifold":
        out_v, out_f = manifold_repair(verts, tris, int(MANIFOLD_LEAVES_PER_CELL * resolution**2), where)
        return out_v, out_f, "manifold"
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    h = float((hi - lo).max()) / resolution
    field = _soup_field(verts, tris, shell_voxels * h)
    pad = shell_voxels * h  # the shell's surface lies this far outside the soup
    out_v, out_f = grid_field_to_mesh(field, lo - pad, hi + pad, resolution, where)
    return out_v, out_f, "winding_grid"


def manifold_repair(
    vertices: np.ndarray, faces: np.ndarray, leaves: int = 20_000, where: str = "mesh"
) -> tuple[np.ndarray, np.ndarray]:
    """Watertight manifold of a soup by Huang et al. 2018 (octree of `leaves` leaves, projected back
    onto the input). Needs `point-cloud-utils`; without it the error names the fallback."""
    try:
        import point_cloud_utils as pcu
    except ImportError:
        raise InputError(
            "prepare.repair",
            "'manifold' needs point-cloud-utils (pip install point-cloud-utils==0.34.0); "
            "or use 'winding_grid'",
        ) from None
    v, f = pcu.make_mesh_watertight(
        np.ascontiguousarray(vertices, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int32),
        leaves,
        0,
    )
    return _check_closed(np.asarray(v, np.float64), np.asarray(f, np.int64), where)


def _clean_soup(vertices: np.ndarray, faces: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices, drop degenerate and duplicate (incl. reversed) triangles."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise InputError(
            where, f"expected (V, 3) vertices and (F>0, 3) triangles, got {v.shape} and {f.shape}"
        )
    if not np.isfinite(v).all():
        raise InputError(where, "vertices contain NaN or Inf")
    if f.min() < 0 or f.max() >= len(v):
        raise InputError(where, f"face index out of range 0..{len(v) - 1}")
    mesh = trimesh.Trimesh(v, f, process=True)  # merges vertices by position
    f = np.asarray(mesh.faces, dtype=np.int64)
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    f = f[np.sort(first)]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    if len(f) == 0:
        raise InputError(where, "no non-degenerate triangles")
    return np.asarray(mesh.vertices, dtype=np.float64), f


def _soup_field(verts: np.ndarray, faces: np.ndarray, shell: float) -> Field:
    """max(|winding number|, shell ramp) of a soup whose pieces are oriented consistently."""
    mesh = trimesh.Trimesh(verts, faces, process=False)
    trimesh.repair.fix_normals(mesh, multibody=True)
    v = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    f = np.ascontiguousarray(mesh.faces, dtype=np.int64)

    def field(queries: np.ndarray) -> np.ndarray:
        w = np.abs(igl.fast_winding_number(v, f, queries))
        if shell > 0:
            w = np.maximum(w, _shell_ramp(mesh, v, f, queries, shell))
        return w

    return field


def _shell_ramp(
    mesh: trimesh.Trimesh, v: np.ndarray, f: np.ndarray, queries: np.ndarray, shell: float
) -> np.ndarray:
    """Shell ramp around a soup (exact distances, computed only for grid points near the surface)."""
    spacing = shell / 2.0
    n_samples = int(np.clip(mesh.area / spacing**2, 10_000, 2_000_000))
    samples, _ = trimesh.sample.sample_surface(mesh, n_samples, seed=0)
    near, _ = cKDTree(samples).query(queries, distance_upper_bound=2 * shell + spacing)
    dist = np.full(len(queries), np.inf)
    idx = np.flatnonzero(np.isfinite(near))
    if len(idx):
        dist[idx] = np.sqrt(igl.point_mesh_squared_distance(queries[idx], v, f)[0])
    return ramp(dist, shell)


def ramp(distance: np.ndarray, shell: float) -> np.ndarray:
    """1 on the surface, 0.5 at distance `shell`, 0 from 2*shell on: max'd into a winding-number field,
    it turns sheets and sparse strips (no enclosed volume) into slabs about 2*shell thick."""
    return np.clip(1.0 - np.asarray(distance) / (2.0 * shell), 0.0, 1.0)


def point_areas(points: np.ndarray, k: int = 8) -> np.ndarray:
    """Per-point area pi r^2, r = mean distance to the k nearest neighbours (libigl's splat size)."""
    p = np.asarray(points, dtype=np.float64)
    k_eff = min(k, len(p) - 1)
    if k_eff < 1:
        raise InputError("points", f"need at least 2 points, got {len(p)}")
    dist, _ = cKDTree(p).query(p, k_eff + 1)
    r = dist[:, 1:].mean(axis=1)
    return np.pi * r**2


def points_to_mesh(
    points: np.ndarray,
    normals: np.ndarray,
    resolution: int = 96,
    shell_spacing: float = 0.5,
    where: str = "points",
) -> tuple[np.ndarray, np.ndarray]:
    """Watertight surface of an oriented point cloud: point-cloud winding number -> grid -> 0.5 surface.

    The field is max'd with a shell of `shell_spacing` times the median point spacing around the
    points, which keeps thin, sparsely sampled parts (tail planes, wing tips) that the winding number
    alone loses (0 turns it off). Coarser than a mesh repair: the surface is only as good as the
    sampling and the normals (wing tips come out ragged at 2.5k points).
    """
    p = np.ascontiguousarray(points, dtype=np.float64)
    n = np.ascontiguousarray(normals, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or n.shape != p.shape:
        raise InputError(where, f"expected matching (N, 3) points and normals, got {p.shape} and {n.shape}")
    areas = point_areas(p)
    shell = shell_spacing * float(np.median(np.sqrt(areas / np.pi)))
    tree = cKDTree(p)

    def field(queries: np.ndarray) -> np.ndarray:
        w = igl.fast_winding_number(p, n, areas, queries)
        if shell > 0:
            dist, _ = tree.query(queries, distance_upper_bound=2 * shell)
            w = np.maximum(w, ramp(dist, shell))
        return w

    return grid_field_to_mesh(field, p.min(axis=0) - shell, p.max(axis=0) + shell, resolution, where)
