"""All-pairs Chamfer distance matrices between sets of point clouds.

CD(X, Y) = mean_x min_y |x-y|^2 + mean_y min_x |x-y|^2 (REFERENCE.md: squared, no sqrt). The cost of
an N x M matrix of 2,048-point clouds is memory traffic if the n x m distances of every pair are
materialized, so each backend reduces the minimum without writing them:

- `triton` (CUDA): a kernel keeps a tile-wise running minimum in registers; direct differences in fp32.
- `kdtree` (CPU): one scipy KD-tree per cloud, queried with all points of the other set at once, float64.
- `torch` (any device): pair blocks through the |x|^2+|y|^2-2x.y expansion, then the distance to the
  chosen neighbour recomputed by direct differences, so fp32 cancellation does not reach the result.

Clouds may be padded: `lengths` gives each cloud's number of valid points (per-part clouds differ in
size). A pair where either cloud has no points gets NaN.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

BACKENDS = ("auto", "triton", "kdtree", "torch")


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None and torch.cuda.is_available()


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """The backend `auto` means on this device: triton on CUDA when importable, kdtree on CPU."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    if torch.device(device).type == "cuda":
        return "triton" if triton_available() else "torch"
    return "kdtree"


def _as_tensor(points, lengths) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.as_tensor(points)
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"expected clouds of shape (N, n, 3), got {tuple(p.shape)}")
    if lengths is None:
        lengths = torch.full((p.shape[0],), p.shape[1], dtype=torch.int64)
    lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
    if lengths.shape != (p.shape[0],) or (lengths < 0).any() or (lengths > p.shape[1]).any():
        raise ValueError(f"lengths must be (N,) in [0, {p.shape[1]}], got {lengths.tolist()[:8]}...")
    return p, lengths


def _directed_kdtree(x: torch.Tensor, xl: torch.Tensor, y: torch.Tensor, yl: torch.Tensor) -> np.ndarray:
    """D[i, j] = mean over valid x of cloud i of the squared distance to the nearest valid y of cloud j."""
    from scipy.spatial import cKDTree

    xn = x.detach().cpu().double().numpy()
    valid = np.arange(xn.shape[1])[None, :] < xl.numpy()[:, None]
    flat = xn[valid]  # all valid points of all x clouds
    owner = np.repeat(np.arange(len(xn)), xl.numpy())
    counts = xl.numpy().astype(np.float64)
    out = np.full((len(xn), y.shape[0]), np.nan)
    yn = y.detach().cpu().double().numpy()
    for j in range(len(yn)):
        if yl[j] == 0 or len(flat) == 0:
            continue
        dist, _ = cKDTree(yn[j, : int(yl[j])]).query(flat, k=1, workers=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.bincount(owner, weights=dist**2, minlength=len(xn)) / counts
    out[counts == 0] = np.nan
    return out


def _pair_block_torch(a, al, b, bl) -> tuple[torch.Tensor, torch.Tensor]:
    """Both directed terms for every pair of a block: (mean_a min_b, mean_b min_a), each (|a|, |b|)."""
    amask = torch.arange(a.shape[1], device=a.device)[None, :] < al[:, None]
    bmask = torch.arange(b.shape[1], device=b.device)[None, :] < bl[:, None]
    d = torch.matmul(a[:, None], b[None].transpose(-1, -2)).mul_(-2)  # (A, B, n, m)
    d.add_((a * a).sum(-1)[:, None, :, None]).add_((b * b).sum(-1)[None, :, None, :])
    d.masked_fill_(~bmask[None, :, None, :], float("inf"))
    d.masked_fill_(~amask[:, None, :, None], float("inf"))
    near_b = d.argmin(dim=3)  # (A, B, n): nearest b point for each a point
    near_a = d.argmin(dim=2)  # (A, B, m)
    del d
    bb = b[None].expand(a.shape[0], -1, -1, -1)
    aa = a[:, None].expand(-1, b.shape[0], -1, -1)
    gathered_b = torch.gather(bb, 2, near_b[..., None].expand(-1, -1, -1, 3))
    gathered_a = torch.gather(aa, 2, near_a[..., None].expand(-1, -1, -1, 3))
    ab = ((a[:, None] - gathered_b) ** 2).sum(-1).masked_fill_(~amask[:, None, :], 0).sum(-1)
    ba = ((b[None] - gathered_a) ** 2).sum(-1).masked_fill_(~bmask[None, :, :], 0).sum(-1)
    return ab / al[:, None], ba / bl[None, :]


def _chamfer_torch(x, xl, y, yl, symmetric: bool, device, block_bytes: int) -> np.ndarray:
    # CD is translation invariant: centring both sets keeps |x|^2 small, which is what the expansion's
    # fp32 cancellation error scales with
    centre = torch.cat([x.reshape(-1, 3), y.reshape(-1, 3)]).mean(dim=0)
    x = (x - centre).to(device)
    y = (y - centre).to(device)
    xl_d, yl_d = xl.to(device), yl.to(device)
    per_pair = max(1, x.shape[1] * y.shape[1] * x.element_size() * 2)
    pairs = max(1, block_bytes // per_pair)
    bi = max(1, int(pairs**0.5))
    bj = max(1, pairs // bi)
    out = torch.full((x.shape[0], y.shape[0]), float("nan"), dtype=torch.float64)
    for i in range(0, x.shape[0], bi):
        for j in range(i if symmetric else 0, y.shape[0], bj):
            ab, ba = _pair_block_torch(x[i : i + bi], xl_d[i : i + bi], y[j : j + bj], yl_d[j : j + bj])
            out[i : i + bi, j : j + bj] = (ab + ba).double().cpu()
    if symmetric:  # blocks left of the diagonal were skipped; mirror the upper triangle
        upper = torch.triu(torch.ones_like(out, dtype=torch.bool))
        out = torch.where(upper, out, out.T)
    out[(xl == 0)[:, None] | (yl == 0)[None, :]] = float("nan")
    return out.numpy()


def _directed_triton(x, xl, y, yl, device) -> np.ndarray:
    from shd.eval._chamfer_triton import directed_chamfer

    return directed_chamfer(x.to(device), xl.to(device), y.to(device), yl.to(device)).double().cpu().numpy()


def chamfer_matrix(
    x,
    y=None,
    *,
    x_lengths=None,
    y_lengths=None,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    block_bytes: int | None = None,
) -> np.ndarray:
    """(N, M) float64 Chamfer distances between clouds x (N, n, 3) and y (M, m, 3); y=None means x vs x.

    The self matrix is computed once for both directions (CD is symmetric). `block_bytes` bounds the
    temporary of the torch backend (default 256 MB on CPU, 2 GB on CUDA).
    """
    device = torch.device(device)
    symmetric = y is None
    x, xl = _as_tensor(x, x_lengths)
    y, yl = (x, xl) if symmetric else _as_tensor(y, y_lengths)
    backend = resolve_backend(backend, device)
    if x.shape[0] == 0 or y.shape[0] == 0:
        return np.zeros((x.shape[0], y.shape[0]))
    if backend == "torch":
        if block_bytes is None:
            block_bytes = 2**31 if device.type == "cuda" else 2**28
        return _chamfer_torch(x, xl, y, yl, symmetric, device, block_bytes)
    directed = _directed_kdtree if backend == "kdtree" else lambda *a: _directed_triton(*a, device)
    d_xy = directed(x, xl, y, yl)
    d_yx = d_xy if symmetric else directed(y, yl, x, xl)
    return d_xy + d_yx.T
