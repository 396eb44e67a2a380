import pytest
import torch

from shd.diffusion.normalization import Normalizer
from shd.diffusion.tokens import BlockDecoder, BlockEncoder, TokenLayout, permute
from shd.fields.config import FIELD_PRESETS
from shd.fields.layout import Layout, make_layout


@pytest.mark.parametrize("preset,n_tokens", [("moe_equal", 32), ("single", 8)])
def test_flat_to_tokens_to_flat_is_exact(preset, n_tokens):
    layout = make_layout(FIELD_PRESETS[preset], ["body", "wing", "tail", "engine"])
    tokens = TokenLayout(Layout.from_json(layout.to_json()))  # as read back from a manifest
    assert tokens.n_tokens == n_tokens
    assert sum(len(g.tokens) * g.size for g in tokens.groups) == layout.dim
    flat = torch.randn(3, layout.dim, dtype=torch.float64)
    parts = tokens.split(flat)
    assert torch.equal(tokens.merge(parts), flat)
    # each group row is exactly one block's scalars
    for g, p in zip(tokens.groups, parts, strict=True):
        for j, t in enumerate(g.tokens):
            b = layout.blocks[t]
            assert torch.equal(p[:, j], flat[:, b.offset : b.offset + b.size])


def test_same_size_blocks_of_all_experts_share_one_group():
    tokens = TokenLayout(make_layout(FIELD_PRESETS["moe_equal"]))
    by_size = {g.size: len(g.tokens) for g in tokens.groups}
    # 27*60 first-layer weights x4, 60*60 weights x8, 60-vectors (biases, last weight) x16, output bias x4
    assert by_size == {1620: 4, 3600: 8, 60: 16, 1: 4}


def test_grouped_maps_equal_one_linear_per_block():
    layout = make_layout(FIELD_PRESETS["moe_equal"])
    tokens = TokenLayout(layout)
    enc, dec = BlockEncoder(tokens, 16), BlockDecoder(tokens, 16)
    flat = torch.randn(2, layout.dim)
    h = enc(flat)
    out = dec(h)
    for gi, g in enumerate(tokens.groups):
        w, bias = enc.maps[gi].weight, enc.maps[gi].bias
        wd, bd = dec.maps[gi].weight, dec.maps[gi].bias
        for j, t in enumerate(g.tokens):
            b = layout.blocks[t]
            x = flat[:, b.offset : b.offset + b.size]
            assert torch.allclose(h[:, t], x @ w[j] + bias[j], atol=1e-4)
            assert torch.allclose(out[:, b.offset : b.offset + b.size], h[:, t] @ wd[j] + bd[j], atol=1e-4)


@pytest.mark.parametrize("mode", ["none", "block", "scalar"])
def test_normalization_round_trip_and_statistics(mode):
    layout = make_layout(FIELD_PRESETS["single"])
    gen = torch.Generator().manual_seed(0)
    flat = torch.randn(16, layout.dim, generator=gen) * torch.linspace(0.01, 3.0, layout.dim) + 1.5
    norm = Normalizer.fit(flat, layout, mode, floor=0.0)
    z = norm.normalize(flat)
    assert torch.allclose(norm.denormalize(z), flat, atol=1e-4)
    if mode == "scalar":
        assert torch.allclose(z.mean(0), torch.zeros(layout.dim), atol=1e-4)
        assert torch.allclose(z.std(0), torch.ones(layout.dim), atol=1e-3)
    if mode == "block":
        for b in layout.blocks:
            if b.size > 1:
                part = z[:, b.offset : b.offset + b.size]
                assert abs(float(part.mean())) < 1e-4 and abs(float(part.std()) - 1) < 1e-3
    if mode == "none":
        assert torch.equal(z, flat)


def test_expert_masks_cover_whole_experts():
    layout = make_layout(FIELD_PRESETS["moe_equal"])
    tokens = TokenLayout(layout)
    mask = tokens.scalar_mask(tokens.expert_tokens([1]))
    assert mask.sum() == layout.expert_size
    assert mask[layout.expert_size : 2 * layout.expert_size].all()


def test_scalar_std_is_floored_by_the_block_std():
    """Weights constant over the training split (dead units) must not blow up another shape's values."""
    layout = make_layout(FIELD_PRESETS["single"])
    gen = torch.Generator().manual_seed(0)
    flat = torch.randn(8, layout.dim, generator=gen)
    flat[:, :10] = 0.3  # never moved in training
    norm = Normalizer.fit(flat, layout, "scalar", floor=0.1)
    block_std = flat[:, : layout.blocks[0].size].std()
    assert torch.allclose(norm.std[:10], torch.full((10,), float(0.1 * block_std)), rtol=1e-4)
    other = flat[:1].clone()
    other[0, :10] = 0.5
    assert norm.normalize(other)[0, :10].abs().max() < 0.2 / (0.1 * block_std) + 1e-3


def test_permutation_gradient_is_index_selects():
    """`permute` (gather backward) gives index_select's values and gradients, in each dimension."""
    torch.manual_seed(0)
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    for dim in range(3):
        index = torch.randperm(x.shape[dim])
        inverse = torch.empty_like(index)
        inverse[index] = torch.arange(len(index))
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        out, ref = permute(a, dim, index, inverse), b.index_select(dim, index)
        grad = torch.randn_like(ref)
        out.backward(grad)
        ref.backward(grad)
        assert torch.equal(out, ref) and torch.equal(a.grad, b.grad)
