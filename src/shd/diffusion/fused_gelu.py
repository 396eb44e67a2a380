"""Bias + exact GELU of the MLP's hidden layer, with the bias gradient summed inside the backward kernel.

Why: on the reference net (batch 4096, 33 tokens, hidden 2048) the hidden activation is 277M values a
layer, so its element-wise kernels are bound by memory traffic. Inductor's compiled step computes the
GELU backward in one kernel (read the incoming gradient and the pre-activation, write the gradient) and
then the bias gradient in a second one that reads both inputs again to recompute it: 2.3 of a 96 ms
step on an H100 (BENCHMARKS.md, diffusion_cuda_mfu). Here one backward pass writes the gradient and
accumulates its column sums in fp32 registers; each program writes one row of partial sums, which a
small sum reduces (deterministic: no atomics). The forward adds the bias itself, so the matmul before
it runs without one.

CUDA + Triton only (`supports` says when; on CPU under Triton's interpreter for the tests); callers use
`F.gelu(F.linear(x, w, b))` otherwise, the same math. Behind an opaque `torch.library.custom_op` like
`short_attention`, so torch.compile calls the kernels as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the library path is used instead
    triton = None

from shd.diffusion.short_attention import INTERPRETED

DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# rows of one backward program: each writes one row of bias-gradient partials (a 135168 x 2048 hidden
# layer: 264 rows of partials, 2 MB, summed by torch), whatever block shape the autotuner picks
ROWS_PER_PROGRAM = 512
INTERPRETER_BLOCKS = {"BLOCK_M": 4, "BLOCK_N": 16}  # no autotuning in the interpreter (it cannot time)
INTERPRETER_ROWS = 16  # several row programs and a partly filled last one on the tests' shapes


def supports(pre: torch.Tensor) -> bool:
    """Whether the fused kernels take this pre-activation (on CUDA, or CPU under the interpreter)."""
    if triton is None or pre.dim() < 1 or pre.numel() == 0:
        return False
    on_device = pre.is_cuda or (pre.device.type == "cpu" and INTERPRETED)
    return on_device and pre.dtype in DTYPES


if triton is not None:
    _SQRT1_2 = tl.constexpr(0.7071067811865476)
    _INV_SQRT_2PI = tl.constexpr(0.3989422804014327)

    def _tuned(configs):
        def wrap(kernel):
            if INTERPRETED:
                return kernel
            tried = [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w) for m, n, w in configs]
            return triton.autotune(configs=tried, key=["N"])(kernel)

        return wrap

    @triton.jit
    def _tile(ptr, bias_ptr, rows, cols, M, N):
        """fp32 pre-activation + bias of one (rows, cols) tile, its offsets and mask."""
        mask = (rows < M)[:, None] & (cols < N)[None, :]
        offsets = rows.to(tl.int64)[:, None] * N + cols[None, :]
        bias = tl.load(bias_ptr + cols, mask=cols < N, other=0.0).to(tl.float32)
        z = tl.load(ptr + offsets, mask=mask, other=0.0).to(tl.float32) + bias[None, :]
        return z, offsets, mask

    @_tuned([(32, 128, 4), (16, 256, 4), (64, 128, 8), (32, 256, 8), (8, 512, 4)])
    @triton.jit
    def _bias_gelu_forward(pre_ptr, bias_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        z, offsets, mask = _tile(pre_ptr, bias_ptr, rows, cols, M, N)
        y = 0.5 * z * (1.0 + tl.math.erf(z * _SQRT1_2))
        tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=mask)

    @_tuned([(32, 128, 4), (16, 256, 4), (64, 128, 8), (32, 256, 8), (16, 128, 4)])
    @triton.jit
    def _bias_gelu_backward(
        pre_ptr,
        bias_ptr,
        grad_ptr,
        dpre_ptr,
        partial_ptr,
        M,
        N,
        ROWS: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        """One (ROWS x BLOCK_N) strip a program: the gradient, and the strip's column sums as one
        row of `partial` (summed in a 2-D accumulator, reduced once: no cross-warp sum per tile)."""
        cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        first = tl.program_id(1) * ROWS
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for start in tl.range(0, ROWS, BLOCK_M):
            rows = first + start + tl.arange(0, BLOCK_M)
            z, offsets, mask = _tile(pre_ptr, bias_ptr, rows, cols, M, N)
            g = tl.load(grad_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
            # d/dz [z Phi(z)] = Phi(z) + z phi(z)
            d = g * (0.5 * (1.0 + tl.math.erf(z * _SQRT1_2)) + z * tl.exp(-0.5 * z * z) * _INV_SQRT_2PI)
            tl.store(dpre_ptr + offsets, d.to(dpre_ptr.dtype.element_ty), mask=mask)
            acc += d  # masked rows have g = 0
        tl.store(partial_ptr + tl.program_id(1) * N + cols, tl.sum(acc, 0), mask=cols < N)

    def _blocks() -> dict:
        return dict(INTERPRETER_BLOCKS) if INTERPRETED else {}

    @torch.library.custom_op("shd::bias_gelu_forward", mutates_args=())
    def _forward(pre: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n = pre.shape[-1]
        m = pre.numel() // n
        out = torch.empty_like(pre)
        grid = lambda meta: (triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(n, meta["BLOCK_N"]))  # noqa: E731
        _bias_gelu_forward[grid](pre, bias, out, m, n, **_blocks())
        return out

    @_forward.register_fake
    def _(pre: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(pre)

    @torch.library.custom_op("shd::bias_gelu_backward", mutates_args=())
    def _backward(
        pre: torch.Tensor, bias: torch.Tensor, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = pre.shape[-1]
        m = pre.numel() // n
        rows = INTERPRETER_ROWS if INTERPRETED else ROWS_PER_PROGRAM
        groups = triton.cdiv(m, rows)
        dpre = torch.empty_like(pre)
        partial = torch.empty(groups, n, device=pre.device, dtype=torch.float32)
        grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), groups)  # noqa: E731
        _bias_gelu_backward[grid](pre, bias, grad, dpre, partial, m, n, ROWS=rows, **_blocks())
        return dpre, partial.sum(0).to(bias.dtype)

    @_backward.register_fake
    def _(pre: torch.Tensor, bias: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.empty_like(pre), torch.empty_like(bias)

    def _setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs)

    def _grad(ctx, grad: torch.Tensor):
        pre, bias = ctx.saved_tensors
        return _backward(pre, bias, grad.contiguous())

    _forward.register_autograd(_grad, setup_context=_setup_context)


def bias_gelu(pre: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Exact GELU of `pre + bias` (bias over the last dimension), in `pre`'s dtype, computed in fp32.

    Call only where `supports(pre)` is true; `gelu_linear` chooses for you.
    """
    return _forward(pre.contiguous(), bias.contiguous())


def gelu_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, fused: bool) -> torch.Tensor:
    """GELU(x W^T + b): with `fused` (and where the kernels run) the matmul has no bias and the fused
    kernels add it; otherwise the library's linear (bias in the GEMM) and GELU."""
    if not fused:
        return F.gelu(F.linear(x, weight, bias))
    pre = F.linear(x, weight)
    return bias_gelu(pre, bias) if supports(pre) else F.gelu(pre + bias.to(pre.dtype))
