import importlib.util
import os

import numpy as np
import pytest
import torch

from shd.eval.chamfer import chamfer_matrix, resolve_backend, triton_available

from . import loop_reference as ref

CPU_BACKENDS = ["kdtree", "torch"]


def clouds(rng, n_clouds, n_points, scale=1.0):
    return rng.normal(size=(n_clouds, n_points, 3)) * scale


def test_two_point_clouds_by_hand():
    x = np.array([[[0.0, 0, 0], [1, 0, 0]]])
    y = np.array([[[0.0, 0, 0], [0, 2, 0]]])
    # x -> y: 0 and min(1, 5) = 1, mean 0.5;  y -> x: 0 and min(4, 5) = 4, mean 2
    for backend in CPU_BACKENDS:
        assert chamfer_matrix(x, y, backend=backend)[0, 0] == pytest.approx(2.5, rel=1e-12)
    assert ref.chamfer(x[0], y[0]) == pytest.approx(2.5, rel=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_matches_the_loop_in_float64(backend):
    rng = np.random.default_rng(1)
    x, y = clouds(rng, 4, 37), clouds(rng, 3, 29, scale=0.5)
    expected = ref.chamfer_matrix(x, y)
    got = chamfer_matrix(x, y, backend=backend)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    expected_self = ref.chamfer_matrix(x, x)
    np.testing.assert_allclose(chamfer_matrix(x, backend=backend), expected_self, rtol=1e-6, atol=1e-15)


def test_small_blocks_of_the_torch_backend_change_nothing():
    rng = np.random.default_rng(2)
    x = clouds(rng, 7, 16)
    whole = chamfer_matrix(x, backend="torch")
    tiny = chamfer_matrix(x, backend="torch", block_bytes=1)
    np.testing.assert_allclose(tiny, whole, rtol=1e-12)
    np.testing.assert_allclose(tiny, tiny.T, rtol=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_float32_clouds_far_from_the_origin_stay_accurate(backend):
    # |x|^2 ~ 1e2 while nearest distances ~ 1e-4: the naive fp32 expansion would lose most digits
    rng = np.random.default_rng(3)
    x = clouds(rng, 3, 256, scale=0.05) + 6.0
    y = x + rng.normal(size=x.shape) * 0.01
    expected = chamfer_matrix(x, y, backend="kdtree")
    got = chamfer_matrix(x.astype(np.float32), y.astype(np.float32), backend=backend)
    np.testing.assert_allclose(got, expected, rtol=1e-3)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_padded_clouds_use_only_their_valid_points(backend):
    rng = np.random.default_rng(4)
    x, y = clouds(rng, 3, 20), clouds(rng, 2, 15)
    xl, yl = np.array([20, 7, 0]), np.array([15, 3])
    got = chamfer_matrix(x, y, x_lengths=xl, y_lengths=yl, backend=backend)
    for i in range(2):
        for j in range(2):
            assert got[i, j] == pytest.approx(ref.chamfer(x[i, : xl[i]], y[j, : yl[j]]), rel=1e-9)
    assert np.isnan(got[2]).all()  # an empty cloud has no Chamfer distance


def test_auto_backend_choice():
    assert resolve_backend("auto", "cpu") == "kdtree"
    with pytest.raises(ValueError):
        resolve_backend("nope", "cpu")


def _triton_runs() -> bool:
    # on CUDA, or on the CPU through triton's interpreter (TRITON_INTERPRET=1) when triton is installed
    return triton_available() or (
        importlib.util.find_spec("triton") is not None and os.environ.get("TRITON_INTERPRET") == "1"
    )


@pytest.mark.skipif(not _triton_runs(), reason="needs triton and CUDA (or TRITON_INTERPRET=1)")
def test_triton_kernel_matches_float64_reference():
    from shd.eval._chamfer_triton import directed_chamfer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(5)
    x, y = clouds(rng, 3, 150), clouds(rng, 4, 70)
    xl, yl = torch.tensor([150, 65, 0]), torch.tensor([70, 1, 64, 70])
    got = (
        directed_chamfer(
            torch.tensor(x, device=device), xl.to(device), torch.tensor(y, device=device), yl.to(device)
        )
        .cpu()
        .double()
        .numpy()
    )
    for i in range(2):
        for j in range(4):
            d = ((x[i, : xl[i], None] - y[j, None, : yl[j]]) ** 2).sum(-1)
            assert got[i, j] == pytest.approx(d.min(axis=1).mean(), rel=1e-5)
    assert np.isnan(got[2]).all()
