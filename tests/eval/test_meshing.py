import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

from shd.eval.export import export_mesh
from shd.eval.meshing import (
    REFERENCE_LEVEL,
    MeshResult,
    evaluate_grid,
    mesh_fields,
    mesh_volume,
    status_counts,
)
from shd.eval.palette import part_rgba8

from .analytic import SHARPNESS, constant_field, per_shape_field, sphere_field, two_sphere_field

RES = 48


def test_sphere_mesh_is_watertight_outward_and_the_right_size():
    mesh = mesh_fields(sphere_field(0.3), 1, resolution=RES)[0]
    assert mesh.status == "ok" and mesh.reason == ""
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert tm.is_watertight
    assert tm.volume > 0  # counter-clockwise from outside
    outward = (tm.face_normals * tm.triangles_center).sum(axis=1)
    assert (outward > 0).all()
    expected_radius = 0.3 - REFERENCE_LEVEL / SHARPNESS  # where the logit crosses the level
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(radii.mean() - expected_radius) < 1e-3
    assert np.abs(radii - expected_radius).max() < 0.5 / (RES - 1)
    assert (mesh.face_labels == 0).all()
    assert mesh.meta == {"resolution": RES, "level": REFERENCE_LEVEL, "method": "dense"}


def test_two_expert_field_labels_faces_by_argmax_expert():
    mesh = mesh_fields(two_sphere_field(), 1, resolution=RES)[0]
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    left, right = centroids[:, 0] < -0.02, centroids[:, 0] > 0.02
    assert left.sum() > 100 and right.sum() > 100
    assert (mesh.face_labels[left] == 0).all()
    assert (mesh.face_labels[right] == 1).all()


def test_marching_cubes_matches_scikit_image_but_for_ambiguous_cells():
    """Our table vs scikit-image's (Lewiner): the same vertex set (linear interpolation on the same crossing
    edges), a watertight outward mesh, and the same volume; triangles differ only in how ambiguous cells
    and polygons are split."""
    g = torch.linspace(-0.5, 0.5, RES)
    x, y, z = torch.meshgrid(g, g, g, indexing="ij")
    values = SHARPNESS * (0.3 - (x**2 + y**2 + z**2).sqrt() + 0.05 * torch.sin(20 * x) * torch.sin(17 * y))
    ours = mesh_volume(values)
    verts, faces, _, _ = marching_cubes(
        values.numpy(), REFERENCE_LEVEL, spacing=(1 / (RES - 1),) * 3, gradient_direction="ascent"
    )
    verts = verts - 0.5
    assert len(ours.vertices) == len(verts)
    assert cKDTree(verts).query(ours.vertices)[0].max() < 1e-6
    assert cKDTree(ours.vertices).query(verts)[0].max() < 1e-6
    tm = trimesh.Trimesh(ours.vertices, ours.faces, process=False)
    ref = trimesh.Trimesh(verts, faces, process=False)
    assert tm.is_watertight and tm.is_winding_consistent
    assert tm.volume > 0 and abs(tm.volume - ref.volume) < 1e-3 * ref.volume


def test_marching_cubes_table_is_watertight_for_every_cell_configuration():
    """Each of the 256 configurations, with random neighbours, gives a closed mesh (grid 4^3, border out)."""
    gen = torch.Generator().manual_seed(0)
    for config in range(256):
        values = torch.full((4, 4, 4), -1.0)
        values[1:3, 1:3, 1:3] = torch.rand(2, 2, 2, generator=gen) * 0.5 - 1.0  # all outside...
        corners = [(c & 1, c >> 1 & 1, c >> 2 & 1) for c in range(8)]
        for c, (i, j, k) in enumerate(corners):
            if config >> c & 1:
                values[1 + i, 1 + j, 1 + k] = 1.0  # ...but the chosen corners of the middle cell
        mesh = mesh_volume(values, 0.0)
        if config == 0:
            assert mesh.status == "empty"
            continue
        tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        assert tm.is_watertight and tm.is_winding_consistent and tm.volume > 0, config


def test_grid_does_not_depend_on_chunking_and_takes_max_over_experts():
    field = two_sphere_field()
    a = evaluate_grid(field, 2, 17, chunk_points=97)
    b = evaluate_grid(field, 2, 17, chunk_points=17**3)
    torch.testing.assert_close(a, b)
    g = torch.linspace(-0.5, 0.5, 17)
    point = torch.tensor([[[g[3], g[10], g[16]]]])
    torch.testing.assert_close(a[0, 3, 10, 16], field(point).amax(-1)[0, 0])


def test_empty_and_nan_fields_are_reported_not_raised():
    field = per_shape_field(
        [sphere_field(), constant_field(-3.0), constant_field(float("nan")), constant_field(10.0)]
    )
    results = mesh_fields(field, 4, resolution=16)
    assert [r.status for r in results] == ["ok", "empty", "nan", "empty"]
    assert "below level" in results[1].reason and "above level" in results[3].reason
    assert "NaN" in results[2].reason
    assert all(len(r.faces) == 0 == len(r.face_labels) for r in results[1:])
    assert status_counts(results) == {"ok": 1, "empty": 2, "nan": 1}


def test_wrong_field_output_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected \(B, P, E\)"):
        evaluate_grid(lambda p: p[..., 0], 1, 4)


@pytest.mark.parametrize("fmt", ["ply", "glb"])
def test_export_round_trips_with_part_colours(tmp_path, fmt):
    mesh = mesh_fields(two_sphere_field(), 1, resolution=24)[0]
    path = export_mesh(mesh, tmp_path / f"shape.{fmt}", part_names=["left", "right"])
    if fmt == "ply":
        loaded = trimesh.load(path)
        assert len(loaded.faces) == len(mesh.faces)
        np.testing.assert_array_equal(loaded.visual.face_colors, part_rgba8(mesh.face_labels))
    else:
        parts = trimesh.load(path, force="scene").geometry
        assert set(parts) == {"left", "right"}
        assert sum(len(g.faces) for g in parts.values()) == len(mesh.faces)
        np.testing.assert_array_equal(parts["right"].visual.vertex_colors[0], part_rgba8(np.array(1)))


def test_obj_export_has_one_coloured_object_per_part(tmp_path):
    # trimesh's OBJ reader merges objects, so read the text: `o <part>` then `v x y z r g b` lines
    mesh = mesh_fields(two_sphere_field(), 1, resolution=24)[0]
    text = export_mesh(mesh, tmp_path / "shape.obj", part_names=["left", "right"]).read_text()
    objects, faces, colours = [], {}, {}
    for line in text.splitlines():
        if line.startswith("o "):
            objects.append(line[2:])
        elif line.startswith("f "):
            faces[objects[-1]] = faces.get(objects[-1], 0) + 1
        elif line.startswith("v "):
            colours.setdefault(objects[-1], set()).add(tuple(np.round(np.float64(line.split()[4:7]) * 255)))
    assert objects == ["left", "right"]
    assert faces == {"left": int((mesh.face_labels == 0).sum()), "right": int((mesh.face_labels == 1).sum())}
    assert colours["right"] == {tuple(part_rgba8(np.array(1))[:3].astype(float))}


def test_export_of_a_failed_mesh_says_why(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        export_mesh(MeshResult.failed("empty", "no crossing"), tmp_path / "x.ply")


def test_batches_stream_in_order_and_match_single_calls():
    from shd.eval.meshing import iter_meshes

    batches = [(sphere_field(0.3), 1), (per_shape_field([two_sphere_field(), constant_field(-1.0, 2)]), 2)]
    out = list(iter_meshes(batches, resolution=20))
    assert [[m.status for m in b] for b in out] == [["ok"], ["ok", "empty"]]
    single = mesh_fields(two_sphere_field(), 1, resolution=20)[0]
    np.testing.assert_array_equal(out[1][0].faces, single.faces)
    np.testing.assert_array_equal(out[1][0].face_labels, single.face_labels)
