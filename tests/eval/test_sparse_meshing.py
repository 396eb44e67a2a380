"""The sparse (coarse-to-fine) path gives exactly the dense grid's mesh; the combine rule is the field's."""

import math

import numpy as np
import pytest
import torch
import trimesh

from shd.eval.field_bounds import MoEField, sin_interval
from shd.eval.meshing import REFERENCE_LEVEL, evaluate_grid, mesh_batch, mesh_volume
from shd.eval.reconstruct import mesh_weights
from shd.eval.sparse_grid import check_sizes, evaluate_band
from shd.fields.config import FieldConfig
from shd.fields.layout import flatten, make_layout, unflatten
from shd.fields.moe import expert_logits

from .moe_fields import SMALL, fitted_airplanes, random_field, slab_field


def assert_same_meshes(dense, sparse):
    assert [m.status for m in dense] == [m.status for m in sparse]
    for d, s in zip(dense, sparse, strict=True):
        np.testing.assert_array_equal(d.faces, s.faces)
        np.testing.assert_allclose(d.vertices, s.vertices, atol=1e-6, rtol=0)
        np.testing.assert_array_equal(d.face_labels, s.face_labels)


def both(field, n, resolution, level):
    dense = mesh_batch(field, n, resolution=resolution, level=level, method="dense")
    sparse = mesh_batch(field, n, resolution=resolution, level=level, method="sparse")
    return dense, sparse


@pytest.mark.parametrize("combine", ["max", "lse"])
@pytest.mark.parametrize("resolution", [17, 30])
def test_random_fields_sparse_equals_dense(combine, resolution):
    config = FieldConfig(n_experts=3, hidden=(16, 16), n_freqs=2, combine=combine, temperature=0.5)
    field = random_field(config, 3, seed=resolution)
    dense, sparse = both(field, 3, resolution, 0.0)
    assert all(m.ok for m in dense) and sum(len(m.faces) for m in dense) > 500
    assert_same_meshes(dense, sparse)


def test_fitted_airplanes_sparse_equals_dense_and_skips_most_of_the_grid():
    field = fitted_airplanes(2)
    dense, sparse = both(field, 2, 48, -1.0)  # a 150-step fit is not yet sure enough for logit(0.8)
    assert all(m.ok for m in dense)
    assert_same_meshes(dense, sparse)
    band = evaluate_band(field, 2, 48, -1.0)
    assert band.points < 0.5 * 2 * 48**3  # the bound prunes: far fewer points than the dense grid


def test_one_voxel_thin_part_is_kept():
    resolution = 33
    field = slab_field(resolution, REFERENCE_LEVEL)
    grid = evaluate_grid(field, 1, resolution)[0]
    inside_planes = (grid > REFERENCE_LEVEL).flatten(1).any(dim=1).nonzero().flatten().tolist()
    assert inside_planes == [(resolution - 1) // 2]  # exactly one plane of points is inside
    dense, sparse = both(field, 1, resolution, REFERENCE_LEVEL)
    assert dense[0].ok and len(dense[0].faces) > 100
    assert trimesh.Trimesh(dense[0].vertices, dense[0].faces, process=False).is_watertight
    assert_same_meshes(dense, sparse)


def _constant_field(bias: float) -> MoEField:
    params = {
        k: torch.zeros_like(v)
        for k, v in unflatten(torch.zeros(1, make_layout(SMALL).dim), make_layout(SMALL)).items()
    }
    params["layer2.bias"][:] = bias
    return MoEField(params, SMALL)


def _stack(*fields: MoEField) -> MoEField:
    return MoEField({k: torch.cat([f.params[k] for f in fields]) for k in fields[0].params}, SMALL)


def test_empty_full_and_nan_fields_are_reported_alike():
    nan = _constant_field(0.0)
    nan.params["layer1.weight"][0, 1, 2, 3] = float("nan")
    inf = _constant_field(0.0)
    inf.params["layer0.bias"][0, 0, 0] = float("inf")
    field = _stack(_constant_field(-5.0), _constant_field(5.0), nan, inf, random_field(SMALL, 1, seed=3))
    dense, sparse = both(field, 5, 20, 0.0)
    assert [m.status for m in sparse] == ["empty", "empty", "nan", "nan", "ok"]
    assert "below level" in sparse[0].reason and "above level" in sparse[1].reason
    assert "NaN" in sparse[2].reason
    assert_same_meshes(dense, sparse)


def test_lse_combine_is_what_gets_meshed():
    """Meshing took the max over experts even when the config says log-sum-exp (issues 22 and 26)."""
    config = FieldConfig(n_experts=3, hidden=(16, 16), n_freqs=2, combine="lse", temperature=1.0)
    field = random_field(config, 2, seed=5)
    layout = make_layout(config)
    flat = flatten(field.params)
    level = 0.0
    sparse = mesh_weights(flat, layout, config, resolution=20, level=level)  # what every caller runs
    dense = mesh_batch(field, 2, resolution=20, level=level, method="dense")
    for b, mesh in [*enumerate(sparse), *enumerate(dense)]:
        params = {k: v[b : b + 1] for k, v in field.params.items()}
        g = torch.linspace(-0.5, 0.5, 20)
        pts = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), dim=-1).reshape(1, -1, 3)
        lse = torch.logsumexp(expert_logits(params, pts, config), dim=-1).view(20, 20, 20)
        expected = mesh_volume(lse, level)
        np.testing.assert_array_equal(mesh.faces, expected.faces)
        np.testing.assert_allclose(mesh.vertices, expected.vertices, atol=1e-6)


def test_bounds_hold_at_sampled_points():
    field = random_field(FieldConfig(n_experts=2, hidden=(12, 12, 12), n_freqs=4, combine="lse"), 2)
    gen = torch.Generator().manual_seed(0)
    lo = torch.rand(2, 50, 3, generator=gen) - 0.5
    hi = lo + 0.2 * torch.rand(2, 50, 3, generator=gen)
    b_lo, b_hi = field.shape_bounds(lo, hi)
    t = torch.rand(2, 50, 200, 3, generator=gen)
    pts = lo.unsqueeze(2) + t * (hi - lo).unsqueeze(2)
    values = field.combine(field(pts.flatten(1, 2))).view(2, 50, 200)
    assert (values >= b_lo.unsqueeze(-1)).all() and (values <= b_hi.unsqueeze(-1)).all()
    assert (b_hi - b_lo).mean() < 10 * (values.amax(-1) - values.amin(-1)).mean() + 1  # not vacuous


def test_sin_interval_is_the_exact_range():
    lo = torch.tensor([0.0, 1.0, -4.0, 3.0, 1.5])
    hi = torch.tensor([0.1, 2.0, -1.0, 10.0, 1.6])
    low, high = sin_interval(lo, hi)
    dense = [torch.sin(torch.linspace(a, b, 20001)) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
    torch.testing.assert_close(low, torch.stack([d.min() for d in dense]), atol=1e-6, rtol=0)
    torch.testing.assert_close(high, torch.stack([d.max() for d in dense]), atol=1e-6, rtol=0)
    assert math.isclose(float(high[1]), 1.0)


def test_brick_sizes_must_nest():
    check_sizes((32, 8, 4))
    with pytest.raises(ValueError, match="multiple of the next"):
        check_sizes((8, 3))


def test_sparse_needs_a_bounded_field_and_methods_are_checked():
    with pytest.raises(ValueError, match="shape_bounds"):
        mesh_batch(lambda p: p[..., :1], 1, resolution=8, method="sparse")
    with pytest.raises(ValueError, match="one of"):
        mesh_batch(lambda p: p[..., :1], 1, resolution=8, method="fast")
