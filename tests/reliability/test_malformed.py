"""Malformed inputs, generated here (no committed binaries): every bad file ends in an InputError naming
the file and the problem, the good inputs are still processed, and nothing is written half-way.

Already covered elsewhere and not repeated: the v0_normal corpus and v0 label/count cases
(tests/data/test_shapenetpart.py), garbage shard headers and JSON documents (tests/test_shards.py),
open/inverted/single-sheet meshes and NaN vertices (tests/data/test_repair.py).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shd.data.categories import get_category
from shd.data.prepare import PrepareConfig, prepare
from shd.data.repair import make_watertight
from shd.data.sample_store import SampleSet
from shd.data.shape import PreparedShape
from shd.data.shapenetpart import (
    MAX_ABS_COORD,
    MIN_POINTS,
    ShapeError,
    ShapeFileError,
    iter_shapenetpart,
    parse_v0,
    parse_v0_normal,
)
from shd.diffusion.api import load_model, sample_generated
from shd.errors import InputError
from shd.fields.fit import fit_sample_set
from shd.fields.weight_set import WeightSet
from shd.shards import read_shard, write_shard
from tests.data.test_shapenetpart import FIX, SYN, V0_ID, _v0_normal_corpus
from tests.diffusion.conftest import make_weight_set, random_weights
from tests.fields.conftest import make_sample_set, tiny_config
from tests.reliability.killing import leftover_temporaries

AIRPLANE = get_category("airplane")
KINDS = {
    "truncated",
    "empty",
    "columns",
    "non_finite",
    "unknown_label",
    "encoding",
    "out_of_range",
    "too_few_points",
    "count_mismatch",
    "missing_file",
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SCRATCH = Path(tempfile.mkdtemp(prefix="shd-fuzz-"))  # hypothesis reruns the body: no function fixtures
atexit.register(shutil.rmtree, _SCRATCH, True)


# ------------------------------------------------------------------------------ parsers (fuzzed)


def _parsed_or_named(parse, path: Path, *more: Path):
    """The parser's contract: a valid parse, or a ShapeFileError naming one of the files and a kind."""
    try:
        lp = parse()
    except ShapeFileError as exc:
        assert any(str(exc).startswith(f"{p}") for p in (path, *more)), str(exc)
        assert exc.kind in KINDS and exc.problem
        return None
    assert len(lp.points) >= MIN_POINTS and np.isfinite(lp.points).all()
    assert np.abs(lp.points).max() <= MAX_ABS_COORD
    assert lp.labels.shape == (len(lp.points),)
    assert 0 <= lp.labels.min() and lp.labels.max() < AIRPLANE.n_parts
    return lp


TOKEN = st.one_of(
    st.floats(-1, 1, allow_nan=False).map(repr),
    st.integers(0, 3).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e40", "abc", "", "0x1p3", "1,5", "\u00e9", "12"]),
)


@FUZZ
@given(
    rows=st.lists(st.lists(TOKEN, min_size=5, max_size=8), min_size=0, max_size=70),
    tail=st.binary(max_size=12),
)
def test_v0_normal_parser_fuzzed(rows, tail):
    path = _SCRATCH / "fuzz.txt"
    path.write_bytes("\n".join(" ".join(r) for r in rows).encode() + tail)
    _parsed_or_named(lambda: parse_v0_normal(path, AIRPLANE), path)


@FUZZ
@given(data=st.binary(max_size=3000))
def test_v0_normal_parser_on_arbitrary_bytes(data):
    path = _SCRATCH / "bytes.txt"
    path.write_bytes(data)
    _parsed_or_named(lambda: parse_v0_normal(path, AIRPLANE), path)


@FUZZ
@given(n=st.integers(MIN_POINTS, 90), seed=st.integers(0, 2**16), scale=st.floats(1e-3, MAX_ABS_COORD))
def test_valid_v0_normal_files_round_trip_exactly(n, seed, scale):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(-scale, scale, (n, 3))
    normals = rng.normal(size=(n, 3))
    labels = rng.integers(0, AIRPLANE.n_parts, n)
    path = _SCRATCH / "valid.txt"
    rows = zip(xyz.tolist(), normals.tolist(), labels + AIRPLANE.global_offset, strict=True)
    path.write_text("".join(f"{' '.join(map(repr, p))} {' '.join(map(repr, q))} {c}\n" for p, q, c in rows))
    lp = parse_v0_normal(path, AIRPLANE)
    assert np.array_equal(lp.points, xyz) and np.array_equal(lp.labels, labels)


@FUZZ
@given(
    pts=st.lists(st.lists(TOKEN, min_size=2, max_size=4), min_size=0, max_size=70),
    seg=st.lists(
        st.sampled_from(["1", "2", "3", "4", "0", "5", "1.5", "-1", "x", "nan", ""]), min_size=0, max_size=72
    ),
)
def test_v0_parser_fuzzed(pts, seg):
    p, s = _SCRATCH / "fuzz.pts", _SCRATCH / "fuzz.seg"
    p.write_text("\n".join(" ".join(r) for r in pts))
    s.write_text("\n".join(seg))
    _parsed_or_named(lambda: parse_v0(p, s, AIRPLANE), p, s)


# ------------------------------------------------------------------------------- v0 file corpus


def _v0_root(tmp_path: Path, pts_cases: dict[str, bytes], seg_cases: dict[str, bytes]) -> Path:
    root = tmp_path / "v0"
    pts_dir, seg_dir = root / SYN / "points", root / SYN / "points_label"
    pts_dir.mkdir(parents=True)
    seg_dir.mkdir()
    good_pts = (FIX / "v0" / SYN / "points" / f"{V0_ID}.pts").read_bytes()
    good_seg = (FIX / "v0" / SYN / "points_label" / f"{V0_ID}.seg").read_bytes()
    (pts_dir / f"{V0_ID}.pts").write_bytes(good_pts)
    (seg_dir / f"{V0_ID}.seg").write_bytes(good_seg)
    for sid, data in pts_cases.items():
        (pts_dir / f"{sid}.pts").write_bytes(data)
        (seg_dir / f"{sid}.seg").write_bytes(good_seg)
    for sid, data in seg_cases.items():
        (pts_dir / f"{sid}.pts").write_bytes(good_pts)
        (seg_dir / f"{sid}.seg").write_bytes(data)
    return root


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_malformed_v0_point_and_label_files(tmp_path):
    """The .pts side of the v0 layout (the .seg count/label cases live in tests/data) and .seg encoding."""
    pts = _lines(FIX / "v0" / SYN / "points" / f"{V0_ID}.pts")
    seg = _lines(FIX / "v0" / SYN / "points_label" / f"{V0_ID}.seg")
    swap = lambda rows, i, line: b"".join(rows[:i] + [line] + rows[i + 1 :])  # noqa: E731
    pts_cases = {
        "truncated": (b"".join(pts[:-1]) + pts[-1][:7], "truncated", f".pts:{len(pts)}:"),
        "empty": (b"\n\n", "empty", ".pts:"),
        "nan": (swap(pts, 3, b"0.1 nan 0.2\n"), "non_finite", ".pts:4:"),
        "inf": (swap(pts, 8, b"-inf 0.1 0.2\n"), "non_finite", ".pts:9:"),
        "columns": (swap(pts, 2, b"0.1 0.2 0.3 0.4\n"), "columns", ".pts:3:"),
        "utf16": ("".join(p.decode() for p in pts).encode("utf-16"), "encoding", ".pts:1:"),
        "huge": (swap(pts, 5, b"0.1 0.2 3e8\n"), "out_of_range", ".pts:6:"),
        "few": (b"".join(pts[:10]), "too_few_points", ".pts:"),
    }
    seg_cases = {
        "seg_latin1": (b"".join(seg[:4]) + b"\xe9\n" + b"".join(seg[5:]), "encoding", ".seg:5:"),
        "seg_fraction": (swap(seg, 7, b"1.5\n"), "unknown_label", ".seg:8:"),
        "seg_negative": (swap(seg, 9, b"-1\n"), "unknown_label", ".seg:10:"),
    }
    root = _v0_root(
        tmp_path, {k: v[0] for k, v in pts_cases.items()}, {k: v[0] for k, v in seg_cases.items()}
    )
    items = {i.shape_id: i for i in iter_shapenetpart(root, "airplane", layout="v0", grid_resolution=24)}
    assert isinstance(items.pop(V0_ID), PreparedShape)  # the good shape still imports
    expected = {**pts_cases, **seg_cases}
    assert set(items) == set(expected)
    for sid, (_, kind, where) in expected.items():
        err = items[sid]
        assert isinstance(err, ShapeError) and err.kind == kind, (sid, err)
        assert f"{sid}{where}" in err.reason, (sid, err.reason)


def test_prepare_keeps_the_good_shape_and_lists_every_bad_file(tmp_path):
    """The whole stage on a corpus: one npz for the good file, index.json naming each bad file, no
    temporaries; a second run with the bad files gone leaves no stale output."""
    expected = _v0_normal_corpus(tmp_path / "sn" / SYN)
    cfg = PrepareConfig(
        source="shapenetpart",
        shapenetpart_root=str(tmp_path / "sn"),
        counts={"airplane": 0},
        grid_resolution=24,
    )
    out = tmp_path / "prepared"
    n = len(expected)
    by_category = {"airplane": {"shapes": 1, "errors": n}}
    assert prepare(cfg, out) == {"n_shapes": 1, "n_errors": n, "by_category": by_category}
    index = json.loads((out / "index.json").read_text())
    assert {e["shape_id"] for e in index["errors"]} == set(expected)
    for e in index["errors"]:
        assert e["path"].endswith(f"{e['shape_id']}.txt") and f"{e['shape_id']}.txt" in e["reason"]
    assert [p.name for p in (out / "shapes").iterdir()] == [f"{index['shapes'][0]['shape_id']}.npz"]
    PreparedShape.load(out / "shapes" / f"{index['shapes'][0]['shape_id']}.npz")
    assert not leftover_temporaries(out)


# ------------------------------------------------------------------------------------- meshes


def test_self_intersecting_soups_become_one_closed_surface():
    """Two interpenetrating boxes, and a box with a face pushed through the opposite one."""
    a, b = trimesh.creation.box(extents=(0.4, 0.2, 0.2)), trimesh.creation.box(extents=(0.2, 0.4, 0.2))
    soup = trimesh.util.concatenate([a, b])  # closed and consistently wound, but the shells intersect
    v, f, method = make_watertight(soup.vertices, soup.faces, resolution=64)
    mesh = trimesh.Trimesh(v, f, process=False)
    assert method != "as_is" and mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(0.4 * 0.2 * 0.2 * 2 - 0.2**3, rel=0.15)  # the union's volume
    folded = trimesh.creation.box(extents=(0.3, 0.3, 0.3))
    verts = folded.vertices.copy()
    verts[verts[:, 0] > 0, 0] = -0.25  # the +x face crosses the -x face: self-intersecting, inside-out
    v, f, _ = make_watertight(verts, folded.faces, resolution=48)
    assert trimesh.Trimesh(v, f, process=False).is_watertight


def test_bad_mesh_files_are_per_shape_errors_and_a_self_intersecting_mesh_imports(tmp_path):
    mesh = trimesh.load(
        FIX / "shapenetcore_mesh" / SYN / V0_ID / "models" / "model_normalized.obj",
        force="mesh",
        process=False,
        skip_materials=True,
    )
    shifted = trimesh.util.concatenate([mesh, mesh.copy().apply_translation((0.004, 0.003, 0.0))])
    cases = {
        "garbage": b"\x00\x01not an obj\xff",
        "empty": b"# no geometry\n",
        "nan_vertex": b"v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n",
        "self_intersecting": shifted.export(file_type="obj").encode(),
    }
    results = {}
    for name, data in cases.items():
        meshes = tmp_path / name / SYN / V0_ID / "models"
        meshes.mkdir(parents=True)
        (meshes / "model_normalized.obj").write_bytes(data)
        [results[name]] = list(
            iter_shapenetpart(FIX / "v0", "airplane", meshes_root=tmp_path / name, grid_resolution=32)
        )
    for name in ("garbage", "empty", "nan_vertex"):
        err = results[name]
        assert isinstance(err, ShapeError) and err.kind in ("mesh", "alignment"), (name, err)
        assert "model_normalized.obj" in err.reason
    shape = results["self_intersecting"]
    assert isinstance(shape, PreparedShape), shape
    assert trimesh.Trimesh(shape.vertices, shape.faces, process=False).is_watertight
    assert len(np.unique(shape.face_labels)) >= 3


# --------------------------------------------------------------------------- shards and manifests


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture
def weight_set(tmp_path) -> Path:
    samples = make_sample_set(tmp_path / "samples", n_shapes=4)
    fit_sample_set(samples, tmp_path / "weights", tiny_config(init="seed"))
    return tmp_path / "weights"


def test_damaged_weight_shards_and_manifests_name_the_file(weight_set, tmp_path):
    ws = WeightSet.open(weight_set)
    ids = ws.ids(status=None)
    first = ws.record(ids[0])["shard"]
    good = (weight_set / first).read_bytes()

    _truncate(weight_set / first)
    with pytest.raises(InputError, match=rf"{first}: not a readable shd safetensors shard"):
        ws.load_flat(ids)
    tensors, meta = read_shard(weight_set / "shard-00001.safetensors")
    write_shard(weight_set / first, {"params": tensors["params"][:, :-3]}, meta)  # another layout's width
    with pytest.raises(InputError, match=rf"{first}: params \(2, \d+\) do not match the manifest"):
        ws.load_flat(ids[:1])
    (weight_set / first).write_bytes(good)

    manifest = json.loads((weight_set / "manifest.json").read_text())
    broken = {k: v for k, v in manifest.items() if k != "layout"}
    (weight_set / "manifest.json").write_text(json.dumps(broken))
    with pytest.raises(InputError, match=r"manifest\.json: malformed weight-set manifest \(KeyError: 'lay"):
        WeightSet.open(weight_set)
    manifest["shapes"][0]["row"] = 7
    (weight_set / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=rf"{first}: params .*rows up to 7"):
        WeightSet.open(weight_set).load_flat(ids[:1])


def test_a_damaged_weight_shard_is_refitted_on_resume(weight_set, tmp_path):
    """A shard cut short (a copy interrupted outside the atomic writer) no longer counts as finished."""
    before = WeightSet.open(weight_set)
    want = before.load_flat(before.ids(status=None))
    _truncate(weight_set / "shard-00000.safetensors")
    summary = fit_sample_set(tmp_path / "samples", weight_set, tiny_config(init="seed"))
    assert summary["fitted_shards"] == 1 and summary["reused_shards"] == 1
    after = WeightSet.open(weight_set)
    assert torch.allclose(after.load_flat(after.ids(status=None)), want, atol=1e-6)


def test_damaged_sample_shards_and_manifests_name_the_file(tmp_path):
    root = make_sample_set(tmp_path / "samples", n_shapes=4, shard_size=2)
    samples = SampleSet.open(root)
    ids = samples.ids()
    tensors, meta = read_shard(root / "shard-00001.safetensors")
    write_shard(root / "shard-00001.safetensors", {k: v[:1] for k, v in tensors.items()}, meta)
    with pytest.raises(InputError, match=r"shard-00001\.safetensors: points has fewer rows"):
        samples.load(ids)
    _truncate(root / "shard-00000.safetensors", 0.3)
    with pytest.raises(InputError, match=r"shard-00000\.safetensors: not a readable shd safetensors shard"):
        samples.load(ids[:1])
    with pytest.raises(InputError, match=r"shard-00000\.safetensors"):
        fit_sample_set(root, tmp_path / "w", tiny_config(init="seed"))
    assert not (tmp_path / "w" / "manifest.json").exists()
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["shapes"][0].pop("row")
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"manifest\.json: malformed sample-set manifest"):
        SampleSet.open(root)


def test_model_files_damaged_or_of_another_layout(tiny_project, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_project / "models/diffusion/model", model)
    weights = WeightSet.open(tiny_project / "data/weights")
    assert (
        sample_generated(model, 2, seed=0, device="cpu", steps=2, layout=weights.layout).shape[1]
        == weights.layout.dim
    )
    other = WeightSet.open(
        make_weight_set(tmp_path / "other", random_weights(3), ["train"] * 3, ["airplane"] * 3)
    )
    with pytest.raises(InputError, match=r"model: trained on another weight layout .* retrain"):
        sample_generated(model, 2, seed=0, device="cpu", steps=2, layout=other.layout)
    config = json.loads((model / "config.json").read_text())
    config["layout"]["blocks"] = other.layout.to_json()  # config and tensors disagree
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"model: cannot load the model weights"):
        load_model(model, "cpu")
    shutil.copy(tiny_project / "models/diffusion/model/config.json", model / "config.json")
    _truncate(model / "model.safetensors")
    with pytest.raises(InputError, match=r"model: cannot load the model weights"):
        load_model(model, "cpu")
