"""Import real ShapeNetPart shapes (`v0` or `v0_normal` layout) as `PreparedShape` records.

Two paths, chosen by whether ShapeNetCore v2 meshes are given:

- with meshes (`meshes_root/<synset>/<id>/models/model_normalized.obj`): the labelled points are
  aligned into the mesh frame (`mesh = R @ pts + t`, R fixed, t fitted), the mesh is made watertight
  (`repair.make_watertight`) and normalized as the reference does (vertex-mean centre,
  scale 0.475/max|v|). A poor alignment (residual above `ALIGN_MAX_RESIDUAL`) is a per-shape error.
- points only: the labelled points are rotated into the same ShapeNetCore axes, their bounding box is
  centred and scaled into [-0.475, 0.475], and the surface comes from the point-cloud winding number
  (`repair.points_to_mesh`), with the file's normals (`v0_normal`) or estimated ones (`v0`). Coarser
  than the mesh path: thin wing tips come out ragged, and estimated normals can be wrong on thin or
  touching parts. The result is then normalized with the same `center` rule as the mesh path so every
  source meets one contract (max|v| = 0.475).

Either way face labels come from the nearest labelled point, and the labelled points are kept
(normalized) for the sampler. A bad file never stops the import: it becomes a `ShapeError` record
and the other shapes proceed. Splits come from the official split lists when present, otherwise from
a deterministic hash of (seed, shape id) against `split_ratios` (stable when shapes are added).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import igl
import numpy as np
import trimesh
from scipy.spatial import cKDTree

from shd.data.categories import Category, get_category
from shd.data.geometry import CENTER_MODES, HALF_EXTENT, apply_normalization, normalization
from shd.data.repair import DEFAULT_REPAIR, REPAIRS, make_watertight, points_to_mesh
from shd.data.shape import SPLITS, PreparedShape
from shd.errors import InputError

LAYOUTS = ("v0", "v0_normal")
LAYOUT_HINT = (
    "expected either <synset>/points/*.pts + points_label/*.seg (v0) "
    "or <synset>/*.txt with 7 columns (v0_normal)"
)
# ShapeNetPart points -> ShapeNetCore v2 axes (measured, data/shapenetpart/README.md): a +90 deg turn about y.
R_PART_TO_CORE = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
MAX_ABS_COORD = 10.0  # ShapeNetPart points fill a unit-diagonal box; beyond this the file is corrupt
MIN_POINTS = 64  # fewer labelled points cannot define a surface
ALIGN_MAX_RESIDUAL = 0.01  # RMS point-to-mesh distance / mesh bbox diagonal (measured: 0.0007)
DEFAULT_SPLIT_RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}
SOURCE_MESH = "shapenetpart_mesh"
SOURCE_POINTS = "shapenetpart_points"


@dataclass(frozen=True)
class ShapeError:
    """One shape that could not be imported; the import of the others goes on."""

    shape_id: str
    path: str
    reason: str
    kind: str = "error"  # short code: empty, truncated, columns, non_finite, out_of_range, ...


class ShapeFileError(InputError):
    """Bad content in one shape's file: `where` is 'path' or 'path:line', `kind` a short code."""

    def __init__(self, where: str, problem: str, kind: str):
        super().__init__(where, problem)
        self.kind = kind


@dataclass
class LabelledPoints:
    """One parsed ShapeNetPart shape: points in the file's frame, 0-based local part labels."""

    shape_id: str
    points: np.ndarray  # (N, 3) float64
    labels: np.ndarray  # (N,) int64 in [0, n_parts)
    normals: np.ndarray | None  # (N, 3) unit normals (v0_normal) or None (v0)
    path: Path


# ----------------------------------------------------------------------------------------- layout


def detect_layout(root: str | Path, synset: str | None = None) -> str:
    """'v0' or 'v0_normal' from the folder structure (the category's folder first, if given)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, f"ShapeNetPart folder not found; {LAYOUT_HINT}")
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if synset and (root / synset).is_dir():
        dirs = [root / synset] + [d for d in dirs if d.name != synset]
    for d in dirs:
        if (d / "points").is_dir() and any((d / "points").glob("*.pts")):
            return "v0"
        if any(_first_row_width(f) == 7 for f in sorted(d.glob("*.txt"))[:20]):
            return "v0_normal"
    raise InputError(root, f"unrecognized ShapeNetPart layout; {LAYOUT_HINT}")


def _first_row_width(path: Path) -> int:
    """Number of numeric columns on the first line (0 if unreadable)."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(4096).decode("utf-8").split()
        [float(tok) for tok in first]
    except (OSError, UnicodeDecodeError, ValueError):
        return 0
    return len(first)


def read_category_file(root: str | Path) -> dict[str, str] | None:
    """`synsetoffset2category.txt` as {lower-case name: synset}, or None when absent."""
    path = Path(root) / "synsetoffset2category.txt"
    if not path.is_file():
        return None
    out: dict[str, str] = {}
    for lineno, line in _text_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise InputError(f"{path}:{lineno}", f"expected 'Name<TAB>synset', got {line.strip()!r}")
        out[parts[0].lower()] = parts[1]
    return out


def read_split_lists(root: str | Path, synset: str) -> dict[str, str]:
    """{shape id: split} for `synset` from `train_test_split/shuffled_*_file_list.json` (may be empty)."""
    folder = Path(root) / "train_test_split"
    out: dict[str, str] = {}
    for split in SPLITS:
        path = folder / f"shuffled_{split}_file_list.json"
        if not path.is_file():
            continue
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(path, f"not a JSON list of 'shape_data/<synset>/<id>' ({exc})") from None
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise InputError(path, "expected a JSON list of 'shape_data/<synset>/<id>' strings")
        for entry in entries:
            parts = entry.strip("/").split("/")
            if len(parts) >= 2 and parts[-2] == synset:
                if out.get(parts[-1], split) != split:
                    raise InputError(
                        path, f"shape {parts[-1]} is listed in both {out[parts[-1]]} and {split}"
                    )
                out[parts[-1]] = split
    return out


def hash_split(shape_id: str, ratios: Mapping[str, float] | Sequence[float], seed: int = 0) -> str:
    """Deterministic split from sha256(seed/shape_id): independent of file order and of other shapes."""
    weights = _split_weights(ratios)
    digest = hashlib.sha256(f"{seed}/{shape_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    for split, w in zip(SPLITS, weights, strict=True):
        edge += w
        if u < edge:
            return split
    return next(s for s, w in zip(reversed(SPLITS), reversed(weights), strict=True) if w > 0)


def _split_weights(ratios: Mapping[str, float] | Sequence[float]) -> list[float]:
    if isinstance(ratios, Mapping):
        unknown = set(ratios) - set(SPLITS)
        if unknown:
            raise InputError("split_ratios", f"unknown split(s) {sorted(unknown)}; expected keys {SPLITS}")
        values = [float(ratios.get(s, 0.0)) for s in SPLITS]
    else:
        values = [float(r) for r in ratios]
        if len(values) != len(SPLITS):
            raise InputError(
                "split_ratios", f"expected {len(SPLITS)} ratios (train, val, test), got {values}"
            )
    total = sum(values)
    if any(v < 0 or not math.isfinite(v) for v in values) or total <= 0:
        raise InputError("split_ratios", f"expected non-negative ratios with a positive sum, got {values}")
    return [v / total for v in values]


# ---------------------------------------------------------------------------------------- parsing


def _text_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank lines; undecodable or empty files are `ShapeFileError`s."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ShapeFileError(str(path), f"cannot read file ({exc.strerror})", "missing_file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ShapeFileError(
            f"{path}:{line}",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); expected plain ASCII numbers",
            "encoding",
        ) from None
    rows = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not rows:
        raise ShapeFileError(str(path), "empty file; expected one point per line", "empty")
    return rows


def _parse_rows(path: Path, width: int, what: str) -> np.ndarray:
    """All rows as a float array (n, width); names the first bad line and why."""
    rows = _text_lines(path)
    out = np.empty((len(rows), width), dtype=np.float64)
    for r, (lineno, line) in enumerate(rows):
        tokens = line.split()
        if len(tokens) != width:
            last = r == len(rows) - 1 and len(tokens) < width
            kind, why = ("truncated", "file ends mid-row") if last else ("columns", "wrong column count")
            raise ShapeFileError(
                f"{path}:{lineno}", f"{why}: expected {width} numbers ({what}), got {len(tokens)}", kind
            )
        try:
            out[r] = [float(t) for t in tokens]
        except ValueError:
            raise ShapeFileError(
                f"{path}:{lineno}", f"expected {width} numbers ({what}), got {line.strip()[:60]!r}", "columns"
            ) from None
        if not np.isfinite(out[r]).all():
            raise ShapeFileError(
                f"{path}:{lineno}", f"NaN or Inf value; expected finite numbers ({what})", "non_finite"
            )
    return out


def _check_points(path: Path, xyz: np.ndarray) -> None:
    """Coordinates in a sane range and enough of them."""
    big = np.flatnonzero(np.abs(xyz).max(axis=1) > MAX_ABS_COORD)
    if len(big):
        value = np.abs(xyz[big[0]]).max()
        raise ShapeFileError(
            f"{path}:{_line_of(path, big[0])}",
            f"coordinate {value:.3g} out of range; expected |x|,|y|,|z| <= {MAX_ABS_COORD}",
            "out_of_range",
        )
    if len(xyz) < MIN_POINTS:
        raise ShapeFileError(
            str(path), f"only {len(xyz)} points; expected at least {MIN_POINTS}", "too_few_points"
        )


def _line_of(path: Path, row: int) -> int:
    """Line number of the row-th non-blank line (for messages only)."""
    return _text_lines(path)[row][0]


def _labels(path: Path, raw: np.ndarray, offset: int, category: Category, base: str) -> np.ndarray:
    """File label values -> 0-based local part indices; anything else is an unknown label."""
    local = raw - offset
    ok = (local == np.round(local)) & (local >= 0) & (local < category.n_parts)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        valid = f"{offset}..{offset + category.n_parts - 1}"
        raise ShapeFileError(
            f"{path}:{_line_of(path, bad)}",
            f"unknown label {raw[bad]:g}; expected {base} {category.name} part ids {valid}",
            "unknown_label",
        )
    return local.astype(np.int64)


def parse_v0(pts_path: str | Path, seg_path: str | Path, category: Category | str) -> LabelledPoints:
    """A `v0` shape: `.pts` (x y z) + `.seg` (1-based local labels), same number of lines."""
    cat = category if isinstance(category, Category) else get_category(category)
    pts_path, seg_path = Path(pts_path), Path(seg_path)
    xyz = _parse_rows(pts_path, 3, "x y z")
    _check_points(pts_path, xyz)
    if not seg_path.is_file():
        raise ShapeFileError(str(seg_path), "label file missing; expected one .seg per .pts", "missing_file")
    seg = _parse_rows(seg_path, 1, "1-based part label")[:, 0]
    if len(seg) != len(xyz):
        raise ShapeFileError(
            str(seg_path),
            f"{len(seg)} labels for {len(xyz)} points in {pts_path.name}; expected one label per point",
            "count_mismatch",
        )
    labels = _labels(seg_path, seg, 1, cat, "1-based")
    return LabelledPoints(pts_path.stem, xyz, labels, None, pts_path)


def parse_v0_normal(txt_path: str | Path, category: Category | str) -> LabelledPoints:
    """A `v0_normal` shape: rows `x y z nx ny nz label`, label = 0-based global ShapeNetPart part id."""
    cat = category if isinstance(category, Category) else get_category(category)
    path = Path(txt_path)
    rows = _parse_rows(path, 7, "x y z nx ny nz label")
    _check_points(path, rows[:, :3])
    labels = _labels(path, rows[:, 6], cat.global_offset, cat, "0-based global")
    return LabelledPoints(path.stem, rows[:, :3].copy(), labels, rows[:, 3:6].copy(), path)


# ---------------------------------------------------------------------------------------- normals


def estimate_normals(points: np.ndarray, k: int = 16, k_orient: int = 16) -> np.ndarray:
    """Unit normals for an unoriented cloud: PCA of k neighbours, signed away from a wider neighbourhood.

    Pointing away from the centroid of the `k_orient` nearest points orients convex patches outward
    and, on a thin slab such as a wing, top points away from the bottom sheet. Limitation: flat
    regions wider than that neighbourhood and touching parts can get flipped normals; the winding
    number tolerates some, and the `v0_normal` layout (file normals) avoids the problem.
    """
    p = np.asarray(points, dtype=np.float64)
    tree = cKDTree(p)
    _, idx = tree.query(p, min(k, len(p)))
    nb = p[idx] - p[idx].mean(axis=1, keepdims=True)
    _, vecs = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))
    normals = vecs[:, :, 0]
    _, wide = tree.query(p, min(k_orient, len(p)))
    side = np.einsum("ij,ij->i", normals, p - p[wide].mean(axis=1))
    return normals * np.where(side < 0, -1.0, 1.0)[:, None]


def _file_normals(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """File normals made unit length; zero-length ones are replaced by estimates."""
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    bad = norm[:, 0] < 1e-6
    out = normals / np.where(bad[:, None], 1.0, norm)
    if bad.any():
        out[bad] = estimate_normals(points)[bad]
    return out


# ----------------------------------------------------------------------------------------- import


def _label_faces(
    vertices: np.ndarray, faces: np.ndarray, label_points: np.ndarray, label_values: np.ndarray
) -> np.ndarray:
    """Part of each face = label of the labelled point nearest to its centroid (as the reference does)."""
    centroids = vertices[faces].mean(axis=1)
    _, nearest = cKDTree(label_points).query(centroids)
    return label_values[nearest].astype(np.int64)


def import_points_only(
    lp: LabelledPoints, category: Category, split: str, grid_resolution: int = 96, center: str = "vertex_mean"
) -> PreparedShape:
    """Surface from the labelled points alone (coarser than the mesh path, see the module docstring)."""
    pts = lp.points @ R_PART_TO_CORE.T
    grid_centre = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    grid_scale = HALF_EXTENT / float(np.abs(pts - grid_centre).max())
    p = apply_normalization(pts, grid_centre, grid_scale)
    if lp.normals is not None:
        normals, normals_source = _file_normals(p, lp.normals @ R_PART_TO_CORE.T), "file"
    else:
        normals, normals_source = estimate_normals(p), "estimated"
    verts, faces = points_to_mesh(p, normals, grid_resolution, where=str(lp.path))
    c, s = normalization(verts, center)
    verts = apply_normalization(verts, c, s)
    label_points = apply_normalization(p, c, s)
    meta = {
        "normals": normals_source,
        # file points -> output frame: (R @ x - centre) * scale
        "centre": (grid_centre + c / grid_scale).tolist(),
        "scale": grid_scale * s,
        "grid_centre": grid_centre.tolist(),
        "grid_scale": grid_scale,
    }
    return _labelled_shape(
        lp, category, split, SOURCE_POINTS, verts, faces, label_points, grid_resolution, center, meta
    )


def _labelled_shape(
    lp: LabelledPoints,
    category: Category,
    split: str,
    source: str,
    verts: np.ndarray,
    faces: np.ndarray,
    label_points: np.ndarray,
    grid_resolution: int,
    center: str,
    meta: dict[str, Any],
) -> PreparedShape:
    """What both import paths return: faces labelled by the nearest labelled point, the points kept, and
    the metadata every import records (rotation, grid, centring) beside the path's own."""
    common = {"rotation": R_PART_TO_CORE.tolist(), "grid_resolution": grid_resolution, "center_mode": center}
    return PreparedShape(
        lp.shape_id,
        category.name,
        split,
        source,
        verts,
        faces,
        _label_faces(verts, faces, label_points, lp.labels),
        parts=None,
        label_points=label_points,
        label_values=lp.labels.copy(),
        meta={**common, **meta},
    )


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a mesh file (all groups concatenated, materials ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ShapeFileError(
            str(path),
            "mesh file not found; expected <synset>/<id>/models/model_normalized.obj under meshes_root",
            "missing_mesh",
        )
    try:
        mesh = trimesh.load(path, force="mesh", process=False, skip_materials=True)
    except Exception as exc:  # trimesh raises many types for unreadable files
        raise ShapeFileError(str(path), f"not a readable triangle mesh ({exc})", "mesh") from None
    verts = np.asarray(getattr(mesh, "vertices", np.empty((0, 3))), dtype=np.float64)
    faces = np.asarray(getattr(mesh, "faces", np.empty((0, 3))), dtype=np.int64)
    if len(faces) == 0 or not np.isfinite(verts).all():
        raise ShapeFileError(str(path), "mesh has no triangles or non-finite vertices", "mesh")
    return verts, faces


def align_points_to_mesh(
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, iterations: int = 30, trim: float = 0.9
) -> tuple[np.ndarray, dict[str, float]]:
    """Translation t with `mesh = R_PART_TO_CORE @ pts + t`: bbox centres, then trimmed ICP (R fixed).

    Returns t and residuals (RMS, mean, p95 of point-to-surface distance) relative to the mesh bbox
    diagonal, i.e. in the unit-diagonal frame of ShapeNetCore v2.
    """
    q = np.asarray(points, dtype=np.float64) @ R_PART_TO_CORE.T
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    t = 0.5 * (v.min(axis=0) + v.max(axis=0)) - 0.5 * (q.min(axis=0) + q.max(axis=0))
    for _ in range(iterations):
        d2, _, closest = igl.point_mesh_squared_distance(q + t, v, f)
        keep = d2 <= np.quantile(d2, trim)
        step = (closest - (q + t))[keep].mean(axis=0)
        t = t + step
        if np.linalg.norm(step) < 1e-7:
            break
    d = np.sqrt(igl.point_mesh_squared_distance(q + t, v, f)[0])
    diag = float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))
    residual = {
        "rms": float(np.sqrt((d**2).mean()) / diag),
        "mean": float(d.mean() / diag),
        "p95": float(np.percentile(d, 95) / diag),
    }
    return t, residual


def import_with_mesh(
    lp: LabelledPoints,
    mesh_path: str | Path,
    category: Category,
    split: str,
    grid_resolution: int = 96,
    center: str = "vertex_mean",
    max_residual: float = ALIGN_MAX_RESIDUAL,
    repair: str = DEFAULT_REPAIR,
) -> PreparedShape:
    """Watertight normalized ShapeNetCore mesh with part labels carried over from the aligned points."""
    raw_v, raw_f = load_mesh(mesh_path)
    t, residual = align_points_to_mesh(lp.points, raw_v, raw_f)
    if residual["rms"] > max_residual:
        raise ShapeFileError(
            str(mesh_path),
            f"labelled points do not fit this mesh (RMS residual "
            f"{residual['rms']:.4f} > {max_residual} of the bbox diagonal); "
            "expected the ShapeNetCore v2 mesh of the same shape",
            "alignment",
        )
    verts, faces, method = make_watertight(raw_v, raw_f, grid_resolution, where=str(mesh_path), repair=repair)
    c, s = normalization(verts, center)
    verts = apply_normalization(verts, c, s)
    label_points = apply_normalization(lp.points @ R_PART_TO_CORE.T + t, c, s)
    meta = {
        "mesh_file": str(mesh_path),
        "translation": t.tolist(),
        "align_residual_rms": residual["rms"],
        "align_residual_mean": residual["mean"],
        "align_residual_p95": residual["p95"],
        "repair": method,
        # mesh frame -> output frame: (v - centre) * scale
        "centre": c.tolist(),
        "scale": s,
    }
    return _labelled_shape(
        lp, category, split, SOURCE_MESH, verts, faces, label_points, grid_resolution, center, meta
    )


def _shape_files(root: Path, synset: str, layout: str) -> list[tuple[str, Path]]:
    """(shape id, main file) of every shape of the category, sorted by id."""
    folder = root / synset
    if layout == "v0":
        return [(p.stem, p) for p in sorted((folder / "points").glob("*.pts"))]
    return [(p.stem, p) for p in sorted(folder.glob("*.txt"))]


def _parse(layout: str, path: Path, category: Category) -> LabelledPoints:
    if layout == "v0":
        return parse_v0(path, path.parent.parent / "points_label" / f"{path.stem}.seg", category)
    return parse_v0_normal(path, category)


def _resolve(root: str | Path, category: str | Category, layout: str | None) -> tuple[Path, Category, str]:
    """Check root, category folder and layout before any shape is read (whole-import errors)."""
    root = Path(root)
    cat = category if isinstance(category, Category) else get_category(category)
    if layout is None:
        layout = detect_layout(root, cat.synset)
    elif layout not in LAYOUTS:
        raise InputError("layout", f"got {layout!r}, expected one of {LAYOUTS} or None (autodetect)")
    elif not root.is_dir():
        raise InputError(root, f"ShapeNetPart folder not found; {LAYOUT_HINT}")
    names = read_category_file(root)
    listed = names.get(cat.name) if names else None
    if listed is not None and listed != cat.synset:
        raise InputError(
            root / "synsetoffset2category.txt", f"lists {cat.name} as synset {listed}; expected {cat.synset}"
        )
    if not (root / cat.synset).is_dir():
        raise InputError(
            root / cat.synset, f"no folder for category {cat.name} (synset {cat.synset}); {LAYOUT_HINT}"
        )
    return root, cat, layout


def iter_shapenetpart(
    root: str | Path,
    category: str | Category,
    meshes_root: str | Path | None = None,
    layout: str | None = None,
    split_ratios: Mapping[str, float] | Sequence[float] = DEFAULT_SPLIT_RATIOS,
    seed: int = 0,
    grid_resolution: int = 96,
    center: str = "vertex_mean",
    repair: str = DEFAULT_REPAIR,
) -> Iterator[PreparedShape | ShapeError]:
    """Yield one `PreparedShape` or `ShapeError` per shape file of `category`, in id order.

    Root-level problems (missing folder, unknown layout, bad split lists) raise `InputError` before
    anything is yielded; problems with one shape's files become `ShapeError`s and the rest proceed.
    """
    root, cat, layout = _resolve(root, category, layout)
    _check_options(split_ratios, grid_resolution, center)
    if repair not in REPAIRS:
        raise InputError("prepare.repair", f"got {repair!r}, expected one of {REPAIRS}")
    split_of = read_split_lists(root, cat.synset)
    for shape_id, path in _shape_files(root, cat.synset, layout):
        start = time.perf_counter()
        mesh_path = (
            None
            if meshes_root is None
            else (Path(meshes_root) / cat.synset / shape_id / "models" / "model_normalized.obj")
        )
        split = split_of.get(shape_id) or hash_split(shape_id, split_ratios, seed)
        try:
            lp = _parse(layout, path, cat)
            if mesh_path is None:
                shape = import_points_only(lp, cat, split, grid_resolution, center)
            else:
                shape = import_with_mesh(lp, mesh_path, cat, split, grid_resolution, center, repair=repair)
        except ShapeFileError as exc:
            yield ShapeError(shape_id, str(path), str(exc), exc.kind)
            continue
        except (ValueError, RuntimeError) as exc:  # InputError from repair, degenerate geometry
            yield ShapeError(shape_id, str(path), str(exc), "geometry")
            continue
        shape.meta.update(_provenance(layout, lp, split_of, start))
        yield shape


def _check_options(
    split_ratios: Mapping[str, float] | Sequence[float], grid_resolution: int, center: str
) -> None:
    """Fail once, before any shape, on options that would otherwise fail every shape."""
    _split_weights(split_ratios)
    if center not in CENTER_MODES:
        raise InputError("center", f"got {center!r}, expected one of {CENTER_MODES}")
    if not isinstance(grid_resolution, int) or grid_resolution < 8:
        raise InputError("grid_resolution", f"got {grid_resolution!r}, expected an integer >= 8")


def _provenance(layout: str, lp: LabelledPoints, split_of: Mapping[str, str], start: float) -> dict[str, Any]:
    return {
        "layout": layout,
        "points_file": str(lp.path),
        "n_points": int(len(lp.points)),
        "split_source": "file" if lp.shape_id in split_of else "hash",
        "seconds": round(time.perf_counter() - start, 3),
    }
