"""Winding numbers on torch (fp64) and in the Triton kernel (interpreter on CPU) against libigl's exact
sum: a point may change side only where libigl's winding number is within 1e-4 of 0.5, and then in at
most 1e-4 of the points."""

import igl
import numpy as np
import pytest
import torch
import trimesh

from shd.data.procedural import generate_shape
from shd.data.winding import winding_numbers

from .builders import box_plane


def _closed_blob(seed: int, subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A random closed, non-convex mesh: an icosphere with random radial bumps."""
    rng = np.random.default_rng(seed)
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    v = sphere.vertices * rng.uniform(0.5, 1.0, (len(sphere.vertices), 1)) * 0.4 + rng.uniform(-0.05, 0.05, 3)
    return v, np.asarray(sphere.faces)


def _soup(shape) -> tuple[np.ndarray, np.ndarray]:
    parts = [p for p in shape.parts if p is not None]
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    return np.concatenate([p.vertices for p in parts]), np.concatenate(
        [p.faces + o for p, o in zip(parts, offsets, strict=True)]
    )


def _queries(v, f, n, seed):
    """Half near the surface (sigma 0.01), half uniform, plus points exactly on faces and at vertices."""
    rng = np.random.default_rng(seed)
    tri = v[f[rng.integers(0, len(f), n // 2)]]
    uv = rng.dirichlet([1, 1, 1], n // 2)
    surface = np.einsum("nk,nkd->nd", uv, tri)
    return np.concatenate(
        [
            surface + rng.normal(scale=0.01, size=surface.shape),
            rng.uniform(-0.5, 0.5, (n // 2, 3)),
            surface[:8],
            v[:4],
        ]
    )


def _check_against_libigl(w: np.ndarray, ref: np.ndarray) -> None:
    flipped = (w > 0.5) != (ref > 0.5)
    assert np.all(np.abs(ref[flipped] - 0.5) < 1e-4), ref[flipped]
    assert flipped.mean() <= 1e-4 or flipped.sum() <= 1


def _meshes():
    plane = generate_shape("airplane", 0, 0)
    return {
        "box plane": (box_plane().vertices, box_plane().faces),
        "procedural airplane": (plane.vertices, plane.faces),
        "airplane part soup": _soup(plane),
        "random closed mesh": _closed_blob(1, subdivisions=3),
    }


@pytest.mark.parametrize("name", list(_meshes()))
def test_torch_winding_numbers_match_libigl(name):
    v, f = _meshes()[name]
    q = _queries(v, f, 4000, seed=2)
    ref = igl.winding_number(v, f, q)
    (w,) = winding_numbers([(torch.tensor(q), torch.tensor(v)[torch.tensor(f)])], backend="torch")
    assert np.abs(w.numpy() - ref).max() < 1e-9
    _check_against_libigl(w.numpy(), ref)


def test_triton_kernel_matches_libigl_on_several_jobs_in_one_launch():
    """Two meshes and three query sets in one launch (interpreter on CPU): fp32 tiles plus fp64 redo
    of the points the kernel flags (on faces, at vertices) give libigl's sides."""
    blob_v, blob_f = _closed_blob(3, subdivisions=1)
    box = box_plane()
    jobs, refs = [], []
    for (v, f), n, seed in (
        ((blob_v, blob_f), 300, 4),
        ((box.vertices, box.faces), 200, 5),
        ((blob_v, blob_f), 70, 6),
    ):
        q = _queries(v, f, n, seed)
        jobs.append((torch.tensor(q), torch.tensor(v)[torch.tensor(f)]))
        refs.append(igl.winding_number(v, f, q))
    got = winding_numbers(jobs, backend="triton")
    for w, ref in zip(got, refs, strict=True):
        assert len(w) == len(ref)
        assert np.abs(w.numpy() - ref).max() < 1e-4  # fp32 sums
        _check_against_libigl(w.numpy(), ref)


def test_triton_flags_points_on_the_surface_for_fp64():
    """Points exactly on faces are where fp32 may pick the wrong side; the kernel flags them."""
    from shd.data._winding_triton import winding_numbers_triton

    v, f = _closed_blob(7, subdivisions=1)
    tri = torch.tensor(v)[torch.tensor(f)]
    on_face = tri.mean(dim=1)[:16]
    far = torch.tensor([[0.0, 0.0, 0.0], [0.49, 0.49, 0.49]], dtype=torch.float64)
    q = torch.cat([on_face, far])
    _, risky = winding_numbers_triton(q, tri, torch.tensor([[0, len(q), 0, len(tri)]]))
    assert risky[:16].all() and not risky[16:].any()
