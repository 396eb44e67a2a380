"""Fused self-attention for short token sequences: one Triton program holds whole heads of one sample.

Why: the library kernels (FlashAttention, mem-efficient, cuDNN) tile long sequences; on the weight
tokens (reference: 33 tokens, 16 heads of 32) they took 29-67 ms of a 132 ms reference training step
on an H100 for ~1% of its FLOPs, plus a copy to unpack Q, K, V and one to pack their gradients. Here
the whole sequence of one head fits in registers: the forward reads Q, K, V straight from the packed
qkv projection (B, T, 3C), does the softmax in fp32 and writes O in the (B, T, C) layout the output
projection reads, saving nothing but its input; the backward recomputes P (the whole row is at hand,
so no statistics are kept) and writes the packed qkv gradient. No transposes or copies remain around
the kernels. Each program does 1-8 heads in a pipelined loop (autotuned): the best setting is 17%
faster than the best with one head a program (BENCHMARKS.md, short_attention_cuda).

CUDA + Triton only (`supports` says when); callers use PyTorch's SDPA otherwise, with the same math.
The kernels sit behind an opaque `torch.library.custom_op`: torch.compile calls them as they are, and
Triton's own autotuner picks the launch settings. (Registered with `triton_op`, which lets Inductor
take the kernels over, they ran 4-5x slower inside the compiled step than alone: Inductor kept the
first configuration and its own launch path, pytorch/pytorch#164124, pytorch/ao#2898.)
"""

from __future__ import annotations

import math
import os

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: SDPA is used instead
    triton = None

MAX_TOKENS = 64  # the whole T x T score tile lives in registers; longer sequences go to SDPA
HEAD_DIMS = (16, 32, 64, 128)
DTYPES = (torch.float16, torch.bfloat16)
INTERPRETER_HEADS_PER_PROGRAM = 1  # under TRITON_INTERPRET (no autotuning); the tests also try 2
# Triton chooses its interpreter when a kernel is defined, i.e. at this import: read the switch once
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def supports(qkv: torch.Tensor, heads: int, dropout: float) -> bool:
    """Whether the fused kernels handle this packed (B, T, 3C) projection; otherwise use SDPA.

    On CPU only under Triton's interpreter (TRITON_INTERPRET=1), which the kernel tests use.
    """
    if triton is None or dropout > 0 or qkv.dim() != 3 or qkv.size(-1) % (3 * heads):
        return False
    on_device = qkv.is_cuda or (qkv.device.type == "cpu" and INTERPRETED)
    return (
        on_device
        and qkv.dtype in DTYPES
        and qkv.size(1) <= MAX_TOKENS
        and qkv.size(-1) // (3 * heads) in HEAD_DIMS
    )


def _block(tokens: int) -> int:
    return max(16, 1 << (tokens - 1).bit_length())


if triton is not None:
    _LOG2E = tl.constexpr(1.4426950408889634)

    def _divides_heads(configs, named_args, **kwargs):
        heads = {**named_args, **kwargs}["H"]  # passed by keyword: Triton hands it in kwargs
        return [c for c in configs if heads % c.kwargs["HEADS_PER_PROGRAM"] == 0]

    def _tuned(kernel):
        """Heads per program and launch settings picked per shape on the GPU (the interpreter cannot
        time kernels: one head per program there)."""
        if INTERPRETED:
            return kernel
        # the fastest of 16 settings on an H100 (BENCHMARKS.md, short_attention_cuda), and 1 head for
        # odd head counts
        configs = [triton.Config({"HEADS_PER_PROGRAM": n}, num_warps=4, num_stages=2) for n in (1, 2, 4, 8)]
        return triton.autotune(
            configs=configs, key=["T", "H", "D"], prune_configs_by={"early_config_prune": _divides_heads}
        )(kernel)

    @triton.jit
    def _softmax_tile(q, k, rows, T, scale):
        """P = softmax(Q K^T * scale) over the first T columns, fp32 (padded rows/columns of Q, K are 0)."""
        s = tl.dot(q, tl.trans(k)) * (scale * _LOG2E)
        s = tl.where(rows[None, :] < T, s, float("-inf"))
        p = tl.exp2(s - tl.max(s, 1)[:, None])
        return p / tl.sum(p, 1)[:, None]

    @_tuned
    @triton.jit
    def _short_attention_forward(
        qkv_ptr,
        out_ptr,
        T,
        scale,
        H: tl.constexpr,
        D: tl.constexpr,
        BLOCK_T: tl.constexpr,
        HEADS_PER_PROGRAM: tl.constexpr,
    ):
        b = tl.program_id(0).to(tl.int64)
        rows = tl.arange(0, BLOCK_T)
        cols = tl.arange(0, D)
        valid = (rows < T)[:, None]
        src = qkv_ptr + b * T * 3 * H * D + rows[:, None] * (3 * H * D) + cols[None, :]
        dst = out_ptr + b * T * H * D + rows[:, None] * (H * D) + cols[None, :]
        for i in tl.range(0, HEADS_PER_PROGRAM):
            # a multiple of D: keeps the loads vectorized (the loop index hides it from Triton)
            h = tl.multiple_of((tl.program_id(1) * HEADS_PER_PROGRAM + i) * D, D)
            q = tl.load(src + h, mask=valid, other=0.0)
            k = tl.load(src + H * D + h, mask=valid, other=0.0)
            v = tl.load(src + 2 * H * D + h, mask=valid, other=0.0)
            o = tl.dot(_softmax_tile(q, k, rows, T, scale).to(v.dtype), v)
            tl.store(dst + h, o.to(out_ptr.dtype.element_ty), mask=valid)

    @_tuned
    @triton.jit
    def _short_attention_backward(
        qkv_ptr,
        dout_ptr,
        dqkv_ptr,
        T,
        scale,
        H: tl.constexpr,
        D: tl.constexpr,
        BLOCK_T: tl.constexpr,
        HEADS_PER_PROGRAM: tl.constexpr,
    ):
        b = tl.program_id(0).to(tl.int64)
        rows = tl.arange(0, BLOCK_T)
        cols = tl.arange(0, D)
        valid = (rows < T)[:, None]
        packed = b * T * 3 * H * D + rows[:, None] * (3 * H * D) + cols[None, :]
        grad_out = dout_ptr + b * T * H * D + rows[:, None] * (H * D) + cols[None, :]
        dt = dqkv_ptr.dtype.element_ty
        for i in tl.range(0, HEADS_PER_PROGRAM):
            h = tl.multiple_of((tl.program_id(1) * HEADS_PER_PROGRAM + i) * D, D)
            q = tl.load(qkv_ptr + packed + h, mask=valid, other=0.0)
            k = tl.load(qkv_ptr + packed + H * D + h, mask=valid, other=0.0)
            v = tl.load(qkv_ptr + packed + 2 * H * D + h, mask=valid, other=0.0)
            do = tl.load(grad_out + h, mask=valid, other=0.0)
            # the whole row is here, so P is recomputed exactly (no saved statistics or output);
            # padded rows have zero dO: they add nothing to dV and their dS is zero
            p = _softmax_tile(q, k, rows, T, scale)
            dv = tl.dot(tl.trans(p.to(do.dtype)), do)
            dp = tl.dot(do, tl.trans(v))
            # rowsum(dO * O) = rowsum(P * dP), as O = P V
            ds = (p * (dp - tl.sum(p * dp, 1)[:, None]) * scale).to(q.dtype)
            tl.store(dqkv_ptr + packed + h, tl.dot(ds, k).to(dt), mask=valid)
            tl.store(dqkv_ptr + packed + H * D + h, tl.dot(tl.trans(ds), q).to(dt), mask=valid)
            tl.store(dqkv_ptr + packed + 2 * H * D + h, dv.to(dt), mask=valid)

    def _grid(batch: int, heads: int):
        return lambda meta: (batch, heads // meta["HEADS_PER_PROGRAM"])

    def _launch_args(qkv: torch.Tensor, heads: int) -> dict:
        b, t, c3 = qkv.shape
        d = c3 // (3 * heads)
        args = {"T": t, "scale": 1.0 / math.sqrt(d), "H": heads, "D": d, "BLOCK_T": _block(t)}
        if INTERPRETED:
            args["HEADS_PER_PROGRAM"] = INTERPRETER_HEADS_PER_PROGRAM
        return args

    @torch.library.custom_op("shd::short_attention_forward", mutates_args=())
    def _forward(qkv: torch.Tensor, heads: int) -> torch.Tensor:
        b, t, c3 = qkv.shape
        out = qkv.new_empty(b, t, c3 // 3)
        _short_attention_forward[_grid(b, heads)](qkv, out, **_launch_args(qkv, heads))
        return out

    @_forward.register_fake
    def _(qkv: torch.Tensor, heads: int) -> torch.Tensor:
        return qkv.new_empty(qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3)

    @torch.library.custom_op("shd::short_attention_backward", mutates_args=())
    def _backward(qkv: torch.Tensor, grad_out: torch.Tensor, heads: int) -> torch.Tensor:
        grad_qkv = torch.empty_like(qkv)
        grid = _grid(qkv.shape[0], heads)
        _short_attention_backward[grid](qkv, grad_out, grad_qkv, **_launch_args(qkv, heads))
        return grad_qkv

    @_backward.register_fake
    def _(qkv: torch.Tensor, grad_out: torch.Tensor, heads: int) -> torch.Tensor:
        return torch.empty_like(qkv)

    def _setup_context(ctx, inputs, output) -> None:
        qkv, heads = inputs
        ctx.save_for_backward(qkv)
        ctx.heads = heads

    def _grad(ctx, grad_out: torch.Tensor):
        (qkv,) = ctx.saved_tensors
        return _backward(qkv, grad_out.contiguous(), ctx.heads), None

    _forward.register_autograd(_grad, setup_context=_setup_context)


def short_attention(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) V of a packed (B, T, 3C) projection -> (B, T, C), heads side by side.

    Same result as SDPA on `qkv.view(B, T, 3, heads, d)`; call only where `supports` is true.
    """
    return _forward(qkv.contiguous(), heads)
