import math

import pytest
import torch

from shd.errors import InputError
from shd.fields.config import FIELD_PRESETS, FieldConfig, OverfitConfig
from shd.fields.encoding import encoded_dim, positional_encoding
from shd.fields.layout import Layout, flatten, make_layout, param_count, unflatten
from shd.fields.moe import FieldModule, init_params


def test_reference_parameter_counts():
    # 4 experts of 27 -> 60 -> 60 -> 60 -> 1, and the plain 27 -> 128 x 3 -> 1 MLP
    assert param_count(FIELD_PRESETS["moe_equal"]) == 4 * (27 * 60 + 60 + 2 * (60 * 60 + 60) + 61) == 36_244
    assert param_count(FIELD_PRESETS["single"]) == 36_737
    for cfg in FIELD_PRESETS.values():
        assert sum(p.numel() for p in FieldModule(cfg).parameters()) == param_count(cfg)


def test_encoding_is_reference_order():
    x = torch.tensor([[0.1, -0.2, 0.3]])
    enc = positional_encoding(x, 4)
    assert enc.shape[-1] == encoded_dim(4) == 27
    assert torch.equal(enc[0, :3], x[0])
    assert torch.allclose(enc[0, 3:6], torch.sin(x[0])) and torch.allclose(enc[0, 6:9], torch.cos(x[0]))
    assert torch.allclose(enc[0, -3:], torch.cos(8 * x[0]))


def test_flatten_unflatten_exact_round_trip():
    cfg = FIELD_PRESETS["moe_equal"]
    layout = make_layout(cfg, ["body", "wing", "tail", "engine"])
    vec = torch.randn(3, layout.dim)
    params = unflatten(vec, layout)
    assert params["layer0.weight"].shape == (3, 4, 60, 27) and params["layer3.bias"].shape == (3, 4, 1)
    assert torch.equal(flatten(params), vec)
    fresh = {k: torch.randn_like(v) for k, v in params.items()}
    assert all(torch.equal(unflatten(flatten(fresh), layout)[k], fresh[k]) for k in fresh)


def test_blocks_follow_the_flat_vector():
    layout = make_layout(FIELD_PRESETS["moe_equal"], ["body", "wing", "tail", "engine"])
    assert len(layout.blocks) == 32  # 4 experts x 8 tensors: one diffusion token each
    vec = torch.arange(layout.dim, dtype=torch.float64).reshape(1, -1)
    params = unflatten(vec, layout)
    for b in layout.blocks:
        got = params[f"layer{b.layer}.{b.tensor}"][0, b.expert].flatten()
        assert torch.equal(got, vec[0, b.offset : b.offset + b.size])
    engine = [b for b in layout.blocks if b.part == "engine"]
    assert engine[0].offset == 3 * layout.expert_size and sum(b.size for b in engine) == layout.expert_size
    again = Layout.from_json(layout.to_json())
    assert again == layout


def test_manifest_layout_is_validated():
    blocks = make_layout(FieldConfig(hidden=(4,), n_freqs=0)).to_json()
    blocks[-1]["offset"] += 1
    with pytest.raises(InputError):
        Layout.from_json(blocks)


def test_shared_init_is_deterministic_and_linear_like():
    cfg = FIELD_PRESETS["single"]
    a, b = init_params(cfg, 3), init_params(cfg, 3)
    assert torch.equal(a, b) and not torch.equal(a, init_params(cfg, 4))
    w0 = unflatten(a.reshape(1, -1), make_layout(cfg))["layer0.weight"]
    assert w0.abs().max() <= 1 / math.sqrt(27)


def test_config_from_dict():
    cfg = OverfitConfig.from_dict({"field": "single", "lr": 0.005})
    assert cfg.field == FIELD_PRESETS["single"] and cfg.lr == 0.005
    cfg = OverfitConfig.from_dict({"field": {"preset": "moe_equal", "combine": "lse", "temperature": 0.5}})
    assert cfg.field.combine == "lse" and cfg.field.hidden == (60, 60, 60)
    with pytest.raises(InputError, match="unknown"):
        OverfitConfig.from_dict({"learning_rate": 1})
    with pytest.raises(InputError, match="schedule"):
        OverfitConfig(schedule="linear")
