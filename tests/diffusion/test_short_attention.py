"""The fused short-sequence attention kernels against PyTorch's SDPA (values and gradients).

The kernels need Triton: on CUDA they run natively; without a GPU (CI) they run in Triton's
interpreter, which tests/conftest.py switches on before they are defined (Triton is a dev dependency:
torch's CPU wheel does not bring it).
"""

import pytest
import torch
import torch.nn.functional as F

from shd.diffusion import short_attention as sa
from shd.diffusion.config import NetConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.tokens import TokenLayout
from shd.fields.layout import make_layout

from .conftest import IN_TRITON_INTERPRETER, NEEDS_CUDA, TINY_FIELD

# (batch, tokens, heads, head dim): the reference's 33 tokens, a short one, a full 64-token tile
# (even head counts: the interpreter test also runs two heads per program)
SHAPES = ((3, 33, 2, 32), (2, 5, 2, 16), (1, 64, 2, 64))


def max_errors(device: str, dtype: torch.dtype) -> list[tuple[float, float]]:
    """Per shape: (max |out - ref| / max |ref|, max |grad - ref grad| / max |ref grad|), reference in fp32."""
    torch.manual_seed(0)
    errors = []
    for b, t, h, d in SHAPES:
        qkv = torch.randn(b, t, 3 * h * d, device=device, dtype=dtype, requires_grad=True)
        out = sa.short_attention(qkv, h)
        grad_out = torch.randn_like(out)
        out.backward(grad_out)
        ref_in = qkv.detach().float().requires_grad_()
        q, k, v = ref_in.view(b, t, 3, h, d).permute(2, 0, 3, 1, 4)
        ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, h * d)
        ref.backward(grad_out.float())
        out, ref = out.detach().float(), ref.detach()
        errors.append(
            (
                float((out - ref).abs().max() / ref.abs().max()),
                float((qkv.grad.float() - ref_in.grad).abs().max() / ref_in.grad.abs().max()),
            )
        )
    return errors


def _check(errors: list[tuple[float, float]], tolerance: float) -> None:
    for shape, (out_err, grad_err) in zip(SHAPES, errors, strict=True):
        assert out_err < tolerance and grad_err < tolerance, (shape, out_err, grad_err)


@NEEDS_CUDA
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_kernels_match_sdpa_on_cuda(dtype):
    _check(max_errors("cuda", dtype), 2e-2 if dtype == torch.bfloat16 else 3e-3)


@IN_TRITON_INTERPRETER
@pytest.mark.parametrize("heads_per_program", [1, 2])
def test_kernels_match_sdpa_in_the_triton_interpreter(heads_per_program, monkeypatch):
    monkeypatch.setattr(sa, "INTERPRETER_HEADS_PER_PROGRAM", heads_per_program)
    _check(max_errors("cpu", torch.float16), 3e-3)


def test_unsupported_inputs_go_to_sdpa():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    qkv = torch.zeros(2, 33, 3 * 64, dtype=torch.bfloat16, device=device)
    assert not sa.supports(qkv, 2, dropout=0.1)  # attention dropout
    assert not sa.supports(qkv.float(), 2, dropout=0.0)  # fp32 activations
    assert not sa.supports(torch.zeros(2, 65, 3 * 64, dtype=torch.bfloat16, device=qkv.device), 2, 0.0)
    assert not sa.supports(qkv, 3, dropout=0.0)  # width not divisible into heads
    if not sa.INTERPRETED:
        assert not sa.supports(qkv.cpu(), 2, dropout=0.0)  # CPU without the interpreter


@NEEDS_CUDA
def test_denoiser_with_fused_attention_matches_sdpa_under_bf16_autocast():
    torch.manual_seed(0)
    layout = TokenLayout(make_layout(TINY_FIELD))
    base = Denoiser(NetConfig(depth=2, width=64, heads=2), layout).cuda()
    fused = Denoiser(NetConfig(depth=2, width=64, heads=2, attention="triton"), layout).cuda()
    fused.load_state_dict(base.state_dict())
    x, t = torch.randn(8, layout.dim, device="cuda"), torch.randint(0, 500, (8,), device="cuda")
    outs, grads = [], []
    for net in (base, fused):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = net(x, t)
        out.float().square().mean().backward()
        outs.append(out.float())
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    torch.testing.assert_close(outs[1], outs[0], rtol=2e-2, atol=2e-2)
    assert float((grads[1] - grads[0]).norm() / grads[0].norm()) < 2e-2
