import numpy as np
import pytest

from shd.errors import InputError
from shd.eval.meshing import REFERENCE_LEVEL, MeshResult, mesh_fields
from shd.eval.pointclouds import normalize, sample_clouds, sample_surface

from .analytic import SHARPNESS, constant_field, per_shape_field, sphere_field, two_sphere_field


def test_samples_lie_on_the_surface_with_their_face_labels():
    mesh = mesh_fields(two_sphere_field(), 1, resolution=40)[0]
    points, labels = sample_surface(mesh, 2048, seed=0)
    assert points.shape == (2048, 3) and labels.shape == (2048,)
    r = 0.25 - REFERENCE_LEVEL / SHARPNESS
    d_left = np.linalg.norm(points - [-0.15, 0, 0], axis=1)
    d_right = np.linalg.norm(points - [0.15, 0, 0], axis=1)
    assert np.minimum(np.abs(d_left - r), np.abs(d_right - r)).max() < 0.01
    assert (labels[points[:, 0] < -0.02] == 0).all() and (labels[points[:, 0] > 0.02] == 1).all()


def test_sampling_is_area_weighted():
    # two triangles of areas 1 and 3 in the plane z = 0
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [5, 0, 0], [8, 0, 0], [5, 2, 0]], np.float32)
    mesh = MeshResult(verts, np.array([[0, 1, 2], [3, 4, 5]]), np.array([0, 1]))
    _, labels = sample_surface(mesh, 20000, seed=1)
    assert (labels == 1).mean() == pytest.approx(0.75, abs=0.015)


def test_sampling_is_seeded_and_skips_what_cannot_be_sampled():
    field = per_shape_field([sphere_field(), constant_field(-5.0), sphere_field(0.2)])
    meshes = mesh_fields(field, 3, resolution=20)
    meshes.append(MeshResult(np.zeros((3, 3), np.float32), np.array([[0, 1, 2]]), np.array([0])))
    a, b = sample_clouds(meshes, 64, seed=3), sample_clouds(meshes, 64, seed=3)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.points.shape == (2, 64, 3) and a.labels.shape == (2, 64)
    assert a.index.tolist() == [0, 2]
    assert a.skipped == {"empty": 1, "zero_area": 1}
    assert not np.array_equal(sample_clouds(meshes, 64, seed=4).points, a.points)


def test_unit_std_matches_the_reference_test_code_on_an_off_centre_cloud():
    # Two points, (0, 0, 0) and (2, 4, 6): centroid (1, 2, 3), off the x = y = z line.
    # Scale = unbiased std of the 6 coordinates as given, 0 0 0 2 4 6: mean 2, squared deviations
    # 4 4 4 0 4 16 = 32, / (6 - 1) = 6.4, so scale = sqrt(6.4) (the centred coordinates -1 -2 -3 1 2 3
    # would give sqrt(28 / 5) = sqrt(5.6) instead). Result: +-(1, 2, 3) / sqrt(6.4).
    cloud = np.array([[0.0, 0.0, 0.0], [2.0, 4.0, 6.0]])
    expected = np.array([[-1.0, -2.0, -3.0], [1.0, 2.0, 3.0]]) / np.sqrt(6.4)
    np.testing.assert_allclose(normalize(cloud, "unit_std"), expected, rtol=1e-12)
    np.testing.assert_allclose(normalize(cloud[None], "unit_std")[0], expected, rtol=1e-12)


def test_unit_std_centres_each_cloud_and_uses_its_own_scale():
    rng = np.random.default_rng(0)
    clouds = (
        rng.normal(size=(3, 500, 3)) * [1, 2, 3] + np.array([[4, -1, 0.5], [0, 0, 0], [-2, 5, 1]])[:, None]
    )
    out = normalize(clouds, "unit_std")
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-12)
    for c, o in zip(clouds, out, strict=True):  # each cloud divided by its own (uncentred) scale
        np.testing.assert_allclose(o * c.std(ddof=1), c - c.mean(axis=0), rtol=1e-12)


def test_bbox_normalization_fits_the_longest_side_to_one():
    rng = np.random.default_rng(1)
    clouds = rng.uniform(size=(4, 300, 3)) * [0.2, 3, 1] + 7
    out = normalize(clouds, "bbox")
    assert out.min() >= -0.5 and out.max() <= 0.5
    extent = out.max(axis=1) - out.min(axis=1)
    np.testing.assert_allclose(extent.max(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out.max(axis=1) + out.min(axis=1), 0, atol=1e-12)  # box centred


def test_single_cloud_unknown_name_and_degenerate_cloud():
    cloud = np.random.default_rng(2).normal(size=(50, 3))
    np.testing.assert_allclose(normalize(cloud, "bbox"), normalize(cloud[None], "bbox")[0])
    with pytest.raises(InputError, match="unit_std, bbox"):
        normalize(cloud, "lion")
    assert np.isnan(normalize(np.ones((1, 10, 3)), "unit_std")).all()
    # all points at (1, 2, 3): the uncentred coordinates have a spread, but the cloud is one point
    assert np.isnan(normalize(np.tile([1.0, 2.0, 3.0], (1, 10, 1)), "unit_std")).all()
