"""ShapeNetPart import on real fixture files (both layouts, with and without the ShapeNetCore mesh) and
on a malformed-file corpus built here: a bad file becomes a ShapeError and the good ones still import."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from shd.data.categories import get_category
from shd.data.geometry import HALF_EXTENT
from shd.data.shape import PreparedShape
from shd.data.shapenetpart import (
    SOURCE_MESH,
    SOURCE_POINTS,
    ShapeError,
    detect_layout,
    hash_split,
    iter_shapenetpart,
    parse_v0,
    parse_v0_normal,
)
from shd.errors import InputError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "shapenetpart"
AIRPLANE = get_category("airplane")
SYN = AIRPLANE.synset
V0_ID = "1021a0914a7207aff927ed529ad90a11"
V0N_IDS = [
    "1066b65c30d153e04c3a35cee92bb95b",
    "10af5de930178a161596c26b5af806fe",
    "10c7cdfdffe2243b88a89a28f04ce622",
]
RES = 40  # coarse grids keep the file fast; quality numbers below are set for this resolution


def _v0_pts() -> Path:
    return FIX / "v0" / SYN / "points" / f"{V0_ID}.pts"


def _v0_seg() -> Path:
    return FIX / "v0" / SYN / "points_label" / f"{V0_ID}.seg"


def _only(items: list) -> PreparedShape:
    assert len(items) == 1 and isinstance(items[0], PreparedShape), items
    return items[0]


@pytest.fixture(scope="module")
def points_only_v0() -> PreparedShape:
    return _only(list(iter_shapenetpart(FIX / "v0", "airplane", grid_resolution=RES)))


@pytest.fixture(scope="module")
def mesh_import() -> PreparedShape:
    return _only(
        list(
            iter_shapenetpart(
                FIX / "v0", "airplane", meshes_root=FIX / "shapenetcore_mesh", grid_resolution=RES
            )
        )
    )


# ----------------------------------------------------------------------------------------- parsing


def test_layouts_are_detected() -> None:
    assert detect_layout(FIX / "v0") == "v0"
    assert detect_layout(FIX / "v0_normal") == "v0_normal"


def test_v0_parses_with_plausible_airplane_labels() -> None:
    lp = parse_v0(_v0_pts(), _v0_seg(), AIRPLANE)
    assert lp.points.shape == (2488, 3) and lp.normals is None
    assert set(np.unique(lp.labels)) == {0, 1, 2, 3}  # file labels 1..4 -> 0..3
    share = np.bincount(lp.labels, minlength=4) / len(lp.labels)
    assert share.argmax() == 0 and share[0] > 0.3  # body largest (reference mean 0.58)
    assert share[1] > share[2] and share[1] > share[3]  # then wing


def test_v0_normal_parses_global_labels_and_unit_normals() -> None:
    counts = {}
    for sid in V0N_IDS:
        lp = parse_v0_normal(FIX / "v0_normal" / SYN / f"{sid}.txt", "airplane")
        counts[sid] = len(lp.points)
        assert lp.labels.min() >= 0 and lp.labels.max() < AIRPLANE.n_parts
        assert np.allclose(np.linalg.norm(lp.normals, axis=1), 1.0, atol=0.02)
        share = np.bincount(lp.labels, minlength=4) / len(lp.labels)
        assert share.argmax() == 0
    assert counts == {V0N_IDS[0]: 2501, V0N_IDS[1]: 2474, V0N_IDS[2]: 2502}
    no_engine = parse_v0_normal(FIX / "v0_normal" / SYN / f"{V0N_IDS[2]}.txt", "airplane")
    assert 3 not in no_engine.labels


def test_splits_from_file_or_deterministic_hash() -> None:
    ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
    ids = [f"{i:032x}" for i in range(3000)]
    splits = [hash_split(s, ratios, seed=0) for s in ids]
    assert splits == [hash_split(s, ratios, seed=0) for s in ids]  # deterministic
    share = {k: splits.count(k) / len(ids) for k in ratios}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["test"] - 0.1) < 0.03
    assert splits != [hash_split(s, ratios, seed=1) for s in ids]
    assert hash_split(ids[0], (1.0, 0.0, 0.0)) == "train"
    with pytest.raises(InputError, match="split_ratios"):
        hash_split(ids[0], {"train": 1.0, "holdout": 0.5})


# ------------------------------------------------------------------------------------ points only


def _one_sided(shape: PreparedShape) -> np.ndarray:
    """Distance from every labelled point to the surface (the surface should pass through them)."""
    mesh = trimesh.Trimesh(shape.vertices, shape.faces, process=False)
    return cKDTree(mesh.sample(60_000, seed=0)).query(shape.label_points)[0]


def _watertight_normalized(shape: PreparedShape) -> None:
    mesh = trimesh.Trimesh(shape.vertices, shape.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    assert np.abs(shape.vertices).max() == pytest.approx(HALF_EXTENT, abs=1e-9)
    assert np.allclose(shape.vertices.mean(axis=0), 0.0, atol=1e-9)  # vertex-mean centring
    assert len(shape.face_labels) == len(shape.faces)


def test_points_only_v0_gives_a_watertight_labelled_surface(points_only_v0: PreparedShape) -> None:
    s = points_only_v0
    assert s.source == SOURCE_POINTS and s.parts is None and s.meta["normals"] == "estimated"
    assert s.split == "train" and s.meta["split_source"] == "file"
    _watertight_normalized(s)
    d = _one_sided(s)
    assert d.mean() < 0.02 and np.percentile(d, 90) < 0.035
    assert set(np.unique(s.face_labels)) == {0, 1, 2, 3}  # body, wing, tail, engine
    assert len(s.label_points) == 2488 and np.abs(s.label_points).max() < 0.5


def test_points_only_v0_normal_uses_file_normals(tmp_path: Path) -> None:
    items = list(iter_shapenetpart(FIX / "v0_normal", "airplane", grid_resolution=RES))
    assert [i.shape_id for i in items] == V0N_IDS and all(isinstance(i, PreparedShape) for i in items)
    for s in items:
        assert s.meta["normals"] == "file" and s.meta["split_source"] == "hash"
        assert s.split == hash_split(s.shape_id, {"train": 0.8, "val": 0.1, "test": 0.1}, 0)
        _watertight_normalized(s)
        assert _one_sided(s).mean() < 0.02
    assert set(np.unique(items[0].face_labels)) == {0, 1, 2, 3}
    items[0].save(tmp_path / "s.npz")  # meta must be JSON-clean
    back = PreparedShape.load(tmp_path / "s.npz")
    assert back.meta["normals"] == "file" and np.array_equal(back.face_labels, items[0].face_labels)


# ----------------------------------------------------------------------------------------- meshes


def test_mesh_import_aligns_and_normalizes(mesh_import: PreparedShape) -> None:
    s = mesh_import
    assert s.source == SOURCE_MESH and s.meta["repair"] == "winding_grid"  # v2 mesh is an open soup
    assert s.meta["align_residual_rms"] < 0.005
    assert np.allclose(s.meta["translation"], [0.0007, 0.0397, 0.0298], atol=0.002)
    _watertight_normalized(s)
    assert _one_sided(s).mean() < 0.02
    assert set(np.unique(s.face_labels)) == {0, 1, 2, 3}
    areas = trimesh.Trimesh(s.vertices, s.faces, process=False).area_faces
    share = np.bincount(s.face_labels, weights=areas, minlength=4) / areas.sum()
    assert share.argmax() in (0, 1) and share[3] > 0.02  # body/wing dominate, engines present


def test_mesh_import_with_the_manifold_repair(tmp_path: Path) -> None:
    """`prepare.repair: manifold` reaches the mesh path; an unknown repair fails before any shape."""
    kw = {"meshes_root": FIX / "shapenetcore_mesh", "grid_resolution": RES}
    s = _only(list(iter_shapenetpart(FIX / "v0", "airplane", repair="manifold", **kw)))
    assert s.meta["repair"] == "manifold"
    _watertight_normalized(s)
    assert _one_sided(s).mean() < 0.02 and set(np.unique(s.face_labels)) == {0, 1, 2, 3}
    with pytest.raises(InputError, match="prepare.repair"):
        list(iter_shapenetpart(FIX / "v0", "airplane", repair="voxel", **kw))


def test_points_and_mesh_paths_share_one_orientation(
    points_only_v0: PreparedShape, mesh_import: PreparedShape
) -> None:
    """Both paths output ShapeNetCore v2 axes: span along x, up along y, fuselage along z."""
    for s in (points_only_v0, mesh_import):
        extent = s.vertices.max(axis=0) - s.vertices.min(axis=0)
        assert extent[1] < extent[0] and extent[1] < extent[2]


def test_both_paths_record_the_same_import_metadata(
    points_only_v0: PreparedShape, mesh_import: PreparedShape
) -> None:
    """Rotation, grid and centring are written by one helper for both paths, then each path's own keys."""
    common = ("rotation", "grid_resolution", "center_mode", "centre", "scale", "layout", "points_file")
    for key in common:
        assert key in points_only_v0.meta and key in mesh_import.meta, key
    assert points_only_v0.meta["rotation"] == mesh_import.meta["rotation"]
    assert list(points_only_v0.meta)[:3] == list(mesh_import.meta)[:3] == list(common[:3])


def _meshes_root_with(tmp_path: Path, mesh: trimesh.Trimesh | None) -> Path:
    root = tmp_path / "meshes"
    folder = root / SYN / V0_ID / "models"
    folder.mkdir(parents=True)
    if mesh is not None:
        mesh.export(folder / "model_normalized.obj")
    return root


def test_wrong_or_missing_mesh_is_a_per_shape_error(tmp_path: Path) -> None:
    wrong = _meshes_root_with(tmp_path / "a", trimesh.creation.box(extents=(0.2, 0.9, 0.3)))
    [err] = list(iter_shapenetpart(FIX / "v0", "airplane", meshes_root=wrong, grid_resolution=RES))
    assert isinstance(err, ShapeError) and err.kind == "alignment" and "residual" in err.reason
    missing = _meshes_root_with(tmp_path / "b", None)
    [err] = list(iter_shapenetpart(FIX / "v0", "airplane", meshes_root=missing, grid_resolution=RES))
    assert isinstance(err, ShapeError) and err.kind == "missing_mesh"
    assert "model_normalized.obj" in err.reason


# ------------------------------------------------------------------------------- malformed corpus


def _good_rows() -> list[str]:
    return (FIX / "v0_normal" / SYN / f"{V0N_IDS[0]}.txt").read_text().splitlines(keepends=True)


def _replace(rows: list[str], i: int, line: str) -> list[str]:
    return rows[:i] + [line] + rows[i + 1 :]


def _v0_normal_corpus(folder: Path) -> dict[str, tuple[str, int | None]]:
    """Write bad files next to a good one; return {shape id: (expected kind, expected line or None)}."""
    folder.mkdir(parents=True)
    rows = _good_rows()
    shutil.copy(FIX / "v0_normal" / SYN / f"{V0N_IDS[0]}.txt", folder)
    bad: dict[str, tuple[bytes, str, int | None]] = {
        "bad_truncated": (("".join(rows[:-1]) + rows[-1][:12]).encode(), "truncated", len(rows)),
        "bad_empty": (b"", "empty", None),
        "bad_nan": ("".join(_replace(rows, 4, "nan 0 0 0 0 1 0\n")).encode(), "non_finite", 5),
        "bad_inf": ("".join(_replace(rows, 9, "0 inf 0 0 0 1 0\n")).encode(), "non_finite", 10),
        "bad_columns": ("".join(_replace(rows, 2, "0.1 0.2 0.3 0 0 1\n")).encode(), "columns", 3),
        "bad_label": ("".join(_replace(rows, 6, "0.1 0.2 0.3 0 0 1 7\n")).encode(), "unknown_label", 7),
        "bad_utf8": ("".join(rows[:3]).encode() + b"0.1 0.2 \xff\xfe 0 0 1 0\n", "encoding", 4),
        "bad_huge": ("".join(_replace(rows, 1, "1e12 0.2 0.3 0 0 1 0\n")).encode(), "out_of_range", 2),
    }
    for sid, (data, _, _) in bad.items():
        (folder / f"{sid}.txt").write_bytes(data)
    return {sid: (kind, line) for sid, (_, kind, line) in bad.items()}


def test_malformed_v0_normal_files_become_shape_errors(tmp_path: Path) -> None:
    folder = tmp_path / "sn" / SYN
    expected = _v0_normal_corpus(folder)
    items = list(iter_shapenetpart(tmp_path / "sn", "airplane", grid_resolution=24))
    good = [i for i in items if isinstance(i, PreparedShape)]
    errors = {e.shape_id: e for e in items if isinstance(e, ShapeError)}
    assert [g.shape_id for g in good] == [V0N_IDS[0]]
    assert set(errors) == set(expected)
    for sid, (kind, line) in expected.items():
        err = errors[sid]
        assert err.kind == kind, (sid, err)
        assert err.path == str(folder / f"{sid}.txt")
        where = f"{sid}.txt:{line}:" if line else f"{sid}.txt:"
        assert where in err.reason, (sid, err.reason)


def test_parsers_raise_input_errors_naming_file_and_line(tmp_path: Path) -> None:
    expected = _v0_normal_corpus(tmp_path / "c")
    for sid, (_, line) in expected.items():
        pattern = rf"{sid}\.txt:{line}:" if line else rf"{sid}\.txt: .*expected"
        with pytest.raises(InputError, match=pattern):
            parse_v0_normal(tmp_path / "c" / f"{sid}.txt", AIRPLANE)


def test_malformed_v0_files_become_shape_errors(tmp_path: Path) -> None:
    root = tmp_path / "v0"
    pts_dir, seg_dir = root / SYN / "points", root / SYN / "points_label"
    pts_dir.mkdir(parents=True)
    seg_dir.mkdir()
    shutil.copy(_v0_pts(), pts_dir)
    shutil.copy(_v0_seg(), seg_dir)
    pts, seg = _v0_pts().read_text(), _v0_seg().read_text().splitlines(keepends=True)
    cases = {
        "mismatch": ("".join(seg[:-5]), "count_mismatch"),
        "label0": ("".join(_replace(seg, 3, "0\n")), "unknown_label"),  # v0 labels are 1-based
        "label9": ("".join(_replace(seg, 3, "9\n")), "unknown_label"),
        "noseg": (None, "missing_file"),
    }
    for sid, (seg_text, _) in cases.items():
        (pts_dir / f"{sid}.pts").write_text(pts)
        if seg_text is not None:
            (seg_dir / f"{sid}.seg").write_text(seg_text)
    items = {i.shape_id: i for i in iter_shapenetpart(root, "airplane", layout="v0", grid_resolution=24)}
    assert isinstance(items[V0_ID], PreparedShape)
    for sid, (_, kind) in cases.items():
        assert isinstance(items[sid], ShapeError) and items[sid].kind == kind, items[sid]
    assert "2483 labels for 2488 points" in items["mismatch"].reason
    assert f"{sid}.seg" in items["noseg"].reason


# ---------------------------------------------------------------------------------- whole-import


def test_missing_root_and_wrong_layout_are_input_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="nowhere.*v0_normal"):
        list(iter_shapenetpart(missing, "airplane"))
    wrong = tmp_path / "wrong"
    (wrong / SYN).mkdir(parents=True)
    (wrong / SYN / "a.txt").write_text("0.1 0.2 0.3\n")
    (wrong / SYN / "b.ply").write_text("ply\n")
    with pytest.raises(InputError) as exc:
        list(iter_shapenetpart(wrong, "airplane"))
    assert str(wrong) in str(exc.value) and "points_label" in str(exc.value)
    with pytest.raises(InputError, match="layout"):
        list(iter_shapenetpart(FIX / "v0", "airplane", layout="v1"))
    with pytest.raises(InputError, match="center"):
        list(iter_shapenetpart(FIX / "v0", "airplane", center="median"))
    with pytest.raises(InputError, match="03001627.*chair"):
        list(iter_shapenetpart(FIX / "v0_normal", "chair"))  # an airplane-only folder
