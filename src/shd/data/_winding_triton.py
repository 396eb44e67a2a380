"""Triton kernel: generalized winding numbers of many (query set, triangle mesh) jobs in one launch.

One program per tile of BLOCK_P query points of one job walks that job's triangles in tiles of
BLOCK_T. Each (point, triangle) pair adds the triangle's half solid angle (van Oosterom-Strackee:
tan(omega/2) = det[a b c] / (|a||b||c| + (a.b)|c| + (b.c)|a| + (c.a)|b|)) to an elementwise (BLOCK_P,
BLOCK_T) fp32 accumulator, reduced once at the end (short sums: round-off stays ~1e-6 of w).

fp32 is exact enough everywhere except for points almost on a triangle's plane over that triangle
(the sign of a +-2 pi term hangs on det's rounding) or very near a vertex; the kernel flags those
points (`risky`) and `shd.data.winding` recomputes them in fp64. Triton has no atan2 in its
interpreter, so atan is the Cephes atanf polynomial (~2 ulp) after octant reduction. Imported only
when triton is importable.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_P = 64
BLOCK_T = 32
NUM_WARPS = 4
# |det| and denominator below RISK * |a||b||c| (both normalized to [-1, 1]-ish), or a vertex closer than
# RISK_DIST: the fp32 term may have the wrong sign, so the point is recomputed in fp64.
RISK = 1e-3
RISK_DIST = 1e-3

# kernels may read module globals only as tl.constexpr (compiled Triton refuses plain floats; the
# interpreter does not check)
HALF_PI = tl.constexpr(1.5707963267948966)
QUARTER_PI = tl.constexpr(0.7853981633974483)
PI = tl.constexpr(3.141592653589793)
TWO_PI = tl.constexpr(6.283185307179586)


@triton.jit
def _atan_unit(r):  # pragma: no cover - runs on the GPU (or TRITON_INTERPRET=1)
    """atan(r) for r in [0, 1] (Cephes atanf: one reduction step around tan(pi/8), then a polynomial)."""
    big = r > 0.4142135623730950
    x = tl.where(big, (r - 1.0) / (r + 1.0), r)
    z = x * x
    p = (
        ((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1
    ) * z * x + x
    return tl.where(big, p + QUARTER_PI, p)


@triton.jit
def _winding_kernel(
    Q,  # (3, NQ) fp32 query points, SoA
    T,  # (9, NT) fp32 triangle corners v0 v1 v2 (x y z each), SoA
    TILE_JOB,  # (n_tiles,) int32: job of each program
    TILE_START,  # (n_tiles,) int32: first query (global index) of each program
    JOBS,  # (n_jobs, 4) int32: query start, query end, triangle start, triangle end
    W,  # (NQ,) fp32 out: winding number
    RISKY,  # (NQ,) int8 out: 1 where fp32 may be wrong
    NQ,
    NT,
    RISK: tl.constexpr,
    RISK_DIST: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_T: tl.constexpr,
):  # pragma: no cover - runs on the GPU (or TRITON_INTERPRET=1)
    pid = tl.program_id(0)
    job = tl.load(TILE_JOB + pid)
    start = tl.load(TILE_START + pid)
    q_end = tl.load(JOBS + job * 4 + 1)
    t_start = tl.load(JOBS + job * 4 + 2)
    t_end = tl.load(JOBS + job * 4 + 3)
    op = start + tl.arange(0, BLOCK_P)
    mp = op < q_end
    qx = tl.load(Q + op, mask=mp, other=0.0)[:, None]
    qy = tl.load(Q + NQ + op, mask=mp, other=0.0)[:, None]
    qz = tl.load(Q + 2 * NQ + op, mask=mp, other=0.0)[:, None]
    acc = tl.zeros([BLOCK_P, BLOCK_T], dtype=tl.float32)
    risk = tl.zeros([BLOCK_P, BLOCK_T], dtype=tl.int32)
    for ts in range(t_start, t_end, BLOCK_T):
        ot = ts + tl.arange(0, BLOCK_T)
        mt = ot < t_end
        ax = tl.load(T + ot, mask=mt, other=0.0)[None, :] - qx
        ay = tl.load(T + NT + ot, mask=mt, other=0.0)[None, :] - qy
        az = tl.load(T + 2 * NT + ot, mask=mt, other=0.0)[None, :] - qz
        bx = tl.load(T + 3 * NT + ot, mask=mt, other=0.0)[None, :] - qx
        by = tl.load(T + 4 * NT + ot, mask=mt, other=0.0)[None, :] - qy
        bz = tl.load(T + 5 * NT + ot, mask=mt, other=0.0)[None, :] - qz
        cx = tl.load(T + 6 * NT + ot, mask=mt, other=0.0)[None, :] - qx
        cy = tl.load(T + 7 * NT + ot, mask=mt, other=0.0)[None, :] - qy
        cz = tl.load(T + 8 * NT + ot, mask=mt, other=0.0)[None, :] - qz
        la = tl.sqrt(ax * ax + ay * ay + az * az)
        lb = tl.sqrt(bx * bx + by * by + bz * bz)
        lc = tl.sqrt(cx * cx + cy * cy + cz * cz)
        det = ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)
        ab = ax * bx + ay * by + az * bz
        bc = bx * cx + by * cy + bz * cz
        ca = cx * ax + cy * ay + cz * az
        prod = la * lb * lc
        den = prod + ab * lc + bc * la + ca * lb
        # atan2(det, den) in (-pi, pi]: atan of the smaller over the larger magnitude, then the octant
        adet = tl.abs(det)
        aden = tl.abs(den)
        hi = tl.maximum(tl.maximum(adet, aden), 1e-30)
        t = _atan_unit(tl.minimum(adet, aden) / hi)
        t = tl.where(adet > aden, HALF_PI - t, t)
        t = tl.where(den < 0.0, PI - t, t)
        t = tl.where(det < 0.0, -t, t)
        valid = mt[None, :] & mp[:, None]
        acc += tl.where(valid, t, 0.0)
        near_plane = (adet < RISK * prod) & (den < RISK * prod)
        near_vertex = tl.minimum(tl.minimum(la, lb), lc) < RISK_DIST
        risk = tl.maximum(risk, tl.where(valid & (near_plane | near_vertex), 1, 0))
    w = tl.sum(acc, axis=1) / TWO_PI
    tl.store(W + op, w, mask=mp)
    tl.store(RISKY + op, tl.max(risk, axis=1).to(tl.int8), mask=mp)


def winding_numbers_triton(
    queries: torch.Tensor,
    triangles: torch.Tensor,
    jobs: torch.Tensor,
    block_p: int = BLOCK_P,
    block_t: int = BLOCK_T,
    num_warps: int = NUM_WARPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 winding numbers (NQ,) and fp64-needed flags (NQ,) bool for every job's query range.

    queries (NQ, 3), triangles (NT, 3, 3) on one device; jobs (n_jobs, 4) int: query start/end and
    triangle start/end of each job (query ranges disjoint)."""
    device = queries.device
    nq, nt = queries.shape[0], triangles.shape[0]
    q = queries.float().t().contiguous()
    t = triangles.float().reshape(nt, 9).t().contiguous()
    jobs_cpu = jobs.to("cpu", torch.int64).reshape(-1, 4)
    n_tiles = (jobs_cpu[:, 1] - jobs_cpu[:, 0] + block_p - 1).clamp(min=0) // block_p
    owners = torch.repeat_interleave(torch.arange(len(jobs_cpu)), n_tiles)
    first_tile = torch.cumsum(n_tiles, 0) - n_tiles
    starts = jobs_cpu[owners, 0] + block_p * (torch.arange(len(owners)) - first_tile[owners])
    w = torch.zeros(nq, dtype=torch.float32, device=device)
    risky = torch.zeros(nq, dtype=torch.int8, device=device)
    if len(starts):
        _winding_kernel[(len(starts),)](
            q,
            t if nt else torch.zeros(9, 1, device=device),
            owners.to(device, torch.int32),
            starts.to(device, torch.int32),
            jobs_cpu.to(torch.int32).contiguous().to(device),
            w,
            risky,
            nq,
            max(nt, 1),
            RISK=RISK,
            RISK_DIST=RISK_DIST,
            BLOCK_P=block_p,
            BLOCK_T=block_t,
            num_warps=num_warps,
        )
    return w, risky.bool()
