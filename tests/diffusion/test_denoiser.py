import pytest
import torch

from shd.diffusion.config import NetConfig, ScheduleConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.normalization import Normalizer
from shd.diffusion.sampler import WeightSampler
from shd.diffusion.schedule import Schedule
from shd.diffusion.tokens import TokenLayout
from shd.errors import InputError
from shd.fields.config import FIELD_PRESETS
from shd.fields.layout import make_layout

from .conftest import TINY_FIELD
from .conftest import random_weights as _weights

NET = NetConfig(depth=1, width=32, heads=2)


def _sampler(n_categories: int = 0, field=TINY_FIELD) -> WeightSampler:
    layout = make_layout(field)
    net = Denoiser(NetConfig(depth=1, width=32, heads=2, n_categories=n_categories), TokenLayout(layout))
    norm = Normalizer(torch.zeros(layout.dim), torch.ones(layout.dim))
    return WeightSampler(
        net, Schedule(ScheduleConfig()), norm, field, ["airplane", "chair"][:n_categories], "cpu"
    )


@pytest.mark.parametrize("preset", ["moe_equal", "single"])
def test_denoiser_maps_flat_vectors_to_flat_vectors(preset):
    layout = make_layout(FIELD_PRESETS[preset])
    net = Denoiser(NET, TokenLayout(layout))
    out = net(torch.randn(2, layout.dim), torch.tensor([0, 499]))
    assert out.shape == (2, layout.dim) and torch.isfinite(out).all()


def test_conditioning_adds_a_category_token_with_a_null_class():
    s = _sampler(n_categories=2)
    net = s.net
    assert net.category.num_embeddings == 3 and net.null_category == 2
    assert net.pos.shape[0] == net.tokens.n_tokens + 2  # weight tokens + timestep + category
    x, t = torch.randn(4, net.tokens.dim), torch.tensor([1, 2, 3, 4])
    with torch.no_grad():
        cond = net(x, t, torch.tensor([0, 1, 0, 1]))
        null = net(x, t, None)
        explicit_null = net(x, t, torch.full((4,), 2))
    assert cond.shape == null.shape == (4, net.tokens.dim)
    assert torch.equal(null, explicit_null) and not torch.allclose(cond, null)


def test_guided_sampling_runs_cond_and_null_in_one_batch():
    s = _sampler(n_categories=2)
    seen = []
    s.net.register_forward_hook(lambda m, args, out: seen.append(args[2].tolist()))
    out = s.sample(3, steps=2, category="chair", guidance=3.0, seed=0)
    assert out.shape == (3, s.layout.dim)
    assert seen == [[1, 1, 1, 2, 2, 2]] * 2
    seen.clear()
    s.sample(2, steps=1, category=None)  # unconditional sampling of a conditional model: null class
    assert seen == [[2, 2]]
    with pytest.raises(InputError):
        s.sample(1, steps=1, category="table")
    with pytest.raises(InputError):
        _sampler(0).sample(1, steps=1, category="chair")


def test_an_unconditional_model_of_one_category_accepts_its_category():
    s = _sampler(0)
    s.categories = ["airplane"]
    assert s.sample(1, steps=1, category="airplane").shape == (1, s.layout.dim)
    with pytest.raises(InputError):
        s.sample(1, steps=1, category="chair")
    s.categories = ["airplane", "chair"]  # unconditional over two categories: only category=None
    assert s.sample(1, steps=1).shape == (1, s.layout.dim)
    with pytest.raises(InputError):
        s.sample(1, steps=1, category="airplane")


def test_same_seed_same_samples_and_sdedit_inpaint_keep_masked_weights():
    s = _sampler()
    a, b, c = s.sample(2, steps=3, seed=5), s.sample(2, steps=3, seed=5), s.sample(2, steps=3, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    parents = _weights(2)
    keep = s.tokens.scalar_mask(s.tokens.expert_tokens([0]))
    edited = s.sdedit(parents, strength=0.2, steps=10, keep=keep)
    assert torch.allclose(edited[:, keep], parents[:, keep], atol=1e-6)
    assert not torch.allclose(edited[:, ~keep], parents[:, ~keep])
    filled = s.inpaint(parents, keep, steps=5)
    assert torch.allclose(filled[:, keep], parents[:, keep], atol=1e-6)


@pytest.mark.parametrize("kernel", ["matmul", "flash", "efficient", "cudnn", "triton"])
def test_every_attention_kernel_computes_the_same_function(kernel):
    """The kernel is a speed choice only: same parameters, same outputs (CPU: SDPA's own backend)."""
    torch.manual_seed(0)
    layout = TokenLayout(make_layout(TINY_FIELD))
    base = Denoiser(NetConfig(depth=2, width=32, heads=4), layout).eval()
    other = Denoiser(NetConfig(depth=2, width=32, heads=4, attention=kernel), layout).eval()
    other.load_state_dict(base.state_dict())
    x, t = torch.randn(3, layout.dim), torch.tensor([0, 10, 400])
    torch.testing.assert_close(other(x, t), base(x, t), rtol=1e-5, atol=1e-5)


def test_unknown_attention_kernel_is_refused():
    with pytest.raises(InputError, match="net.attention"):
        NetConfig(attention="fast")


def test_a_low_precision_residual_stream_changes_only_the_stream_dtype():
    """residual_dtype=autocast: the stream between blocks takes autocast's dtype (bf16) and gives nearly the
    float32 stream's outputs; without autocast it is the float32 net exactly."""
    torch.manual_seed(0)
    layout = TokenLayout(make_layout(TINY_FIELD))
    base = Denoiser(NetConfig(depth=2, width=32, heads=4), layout)
    low = Denoiser(NetConfig(depth=2, width=32, heads=4, residual_dtype="autocast"), layout)
    low.load_state_dict(base.state_dict())
    x, t = torch.randn(3, layout.dim), torch.tensor([0, 10, 400])
    torch.testing.assert_close(low(x, t), base(x, t), rtol=0, atol=0)
    streams = []
    for net in (base, low):
        net.blocks[0].register_forward_hook(lambda m, i, o: streams.append(o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_base, y_low = base(x, t), low(x, t)
    assert streams == [torch.float32, torch.bfloat16]
    torch.testing.assert_close(y_low.float(), y_base.float(), rtol=0.05, atol=0.05)
    with pytest.raises(InputError, match="net.residual_dtype"):
        NetConfig(residual_dtype="float16")
