"""The fused bias + GELU kernels against PyTorch's GELU (values, input and bias gradients).

On CUDA the kernels run natively; without a GPU (CI) in Triton's interpreter (tests/conftest.py).
"""

import pytest
import torch
import torch.nn.functional as F

from shd.diffusion import fused_gelu as fg
from shd.diffusion.config import NetConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.tokens import TokenLayout
from shd.fields.layout import make_layout

from .conftest import IN_TRITON_INTERPRETER, NEEDS_CUDA, TINY_FIELD

# (leading dims, hidden): ragged rows and columns (masks), several row groups, a token batch
SHAPES = (((7,), 24), ((3, 33), 40), ((300,), 16))


def max_errors(device: str, dtype: torch.dtype) -> list[tuple[float, float, float]]:
    """Per shape: relative max errors of the output, input gradient and bias gradient (fp32 reference)."""
    torch.manual_seed(0)
    errors = []
    for lead, n in SHAPES:
        pre = (torch.randn(*lead, n, device=device) * 2).to(dtype).requires_grad_()
        bias = torch.randn(n, device=device, requires_grad=True)
        out = fg.bias_gelu(pre, bias)
        grad = torch.randn_like(out)
        out.backward(grad)
        ref_pre = pre.detach().float().requires_grad_()
        ref_bias = bias.detach().clone().requires_grad_()
        ref = F.gelu(ref_pre + ref_bias)
        ref.backward(grad.float())
        assert out.dtype == dtype and pre.grad.dtype == dtype and bias.grad.dtype == torch.float32

        def rel(a: torch.Tensor, b: torch.Tensor) -> float:
            return float((a.float() - b).abs().max() / b.abs().max())

        errors.append(
            (rel(out.detach(), ref.detach()), rel(pre.grad, ref_pre.grad), rel(bias.grad, ref_bias.grad))
        )
    return errors


def _check(errors: list[tuple[float, float, float]], tolerance: float) -> None:
    for shape, errs in zip(SHAPES, errors, strict=True):
        assert max(errs) < tolerance, (shape, errs)


@NEEDS_CUDA
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_kernels_match_gelu_on_cuda(dtype):
    _check(max_errors("cuda", dtype), 1e-2 if dtype == torch.bfloat16 else 1e-5)


@IN_TRITON_INTERPRETER
def test_kernels_match_gelu_in_the_triton_interpreter():
    _check(max_errors("cpu", torch.float32), 1e-5)


def test_unsupported_inputs_take_the_library_path():
    assert not fg.supports(torch.zeros(4, 8, dtype=torch.float64))
    assert not fg.supports(torch.zeros(0, 8))
    if not fg.INTERPRETED:
        assert not fg.supports(torch.zeros(4, 8))  # CPU without the interpreter
    # the fallback of the fused path is the library's math
    torch.manual_seed(0)
    x, w, b = (torch.randn(*shape, dtype=torch.float64) for shape in ((5, 6), (8, 6), (8,)))
    torch.testing.assert_close(fg.gelu_linear(x, w, b, fused=True), F.gelu(F.linear(x, w, b)))


def test_denoiser_with_fused_gelu_matches_the_library_net():
    """Same parameters, same outputs and gradients (interpreter on CPU, natively under bf16 on CUDA)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if fg.triton is None or not (device == "cuda" or fg.INTERPRETED):
        pytest.skip("needs Triton on CUDA or its interpreter")
    torch.manual_seed(0)
    layout = TokenLayout(make_layout(TINY_FIELD))
    base = Denoiser(NetConfig(depth=2, width=16, heads=2), layout).to(device)
    fused = Denoiser(NetConfig(depth=2, width=16, heads=2, mlp_kernel="triton"), layout).to(device)
    fused.load_state_dict(base.state_dict())
    x, t = torch.randn(3, layout.dim, device=device), torch.randint(0, 500, (3,), device=device)
    outs, grads = [], []
    for net in (base, fused):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            out = net(x, t)
        out.float().square().mean().backward()
        outs.append(out.float())
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    tol = 2e-2 if device == "cuda" else 1e-5
    torch.testing.assert_close(outs[1], outs[0], rtol=tol, atol=tol)
    assert float((grads[1] - grads[0]).norm() / grads[0].norm()) < tol
