import json

import pytest
import torch

from shd.apps.interpolate import interpolate_part, run_interpolate, slerp
from shd.apps.outputs import jump_ratio
from shd.apps.parents import expert_mask
from shd.errors import InputError

from .conftest import FAST


def test_slerp_follows_the_great_circle():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([2**-0.5, 2**-0.5]), atol=1e-6)
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: linear


def test_jump_is_the_largest_step_over_the_mean():
    assert jump_ratio([1.0, 1.0, 1.0]) == 1.0
    assert jump_ratio([1.0, 3.0]) == 1.5
    assert jump_ratio([1.0, float("nan")]) != jump_ratio([1.0, float("nan")])  # NaN: a failed frame


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_only_the_chosen_expert_moves_and_the_ends_are_the_parents(sampler, weights, airplanes, method):
    a, b = weights.load_flat(airplanes[:2])
    frames = interpolate_part(sampler, a, b, expert=1, frames=5, method=method)
    moved = expert_mask(sampler, [1])
    assert frames.shape == (5, sampler.layout.dim)
    assert torch.equal(frames[:, ~moved], a[~moved].expand(5, -1))  # other experts: A's, bit-identical
    assert torch.equal(frames[0], a) and torch.equal(frames[-1][moved], b[moved])
    assert not torch.equal(frames[2][moved], a[moved])
    if method == "linear":
        assert torch.allclose(frames[2][moved], (a[moved] + b[moved]) / 2, atol=1e-5)
    with pytest.raises(InputError, match="at least 2 frames"):
        interpolate_part(sampler, a, b, 1, frames=1, method=method)


def test_run_interpolate_writes_strip_gif_meshes_and_step_cds(sampler, weights, airplanes, tmp_path):
    out = tmp_path / "interp"
    summary = run_interpolate(
        sampler, out, a=airplanes[0], b=airplanes[1], part="wing", weights=weights, cfg=FAST
    )
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["part"] == "wing" and summary["fixed_parts"] == ["body", "tail", "engine"]
    assert summary["frames"] == FAST.interp_steps
    for method in ("linear", "slerp"):
        r = summary["methods"][method]
        assert (out / r["png"]).stat().st_size > 1000 and (out / r["gif"]).stat().st_size > 1000
        assert len(r["meshes"]) == FAST.interp_steps and len(r["step_cd"]) == FAST.interp_steps - 1
        written = [m for m in r["meshes"] if m["file"]]
        assert written and all((out / m["file"]).stat().st_size > 0 for m in written)
    with pytest.raises(InputError, match="valid parts: body, wing, tail, engine"):
        run_interpolate(
            sampler, tmp_path / "y", a=airplanes[0], b=airplanes[1], part="rudder", weights=weights, cfg=FAST
        )
