import json

import pytest
import torch

from shd.apps.complete import complete_parts, run_complete
from shd.apps.parents import expert_mask
from shd.errors import InputError

from .conftest import FAST


def test_kept_experts_are_bit_identical_and_the_others_generated(sampler, weights, airplanes):
    parents = weights.load_flat(airplanes[:2])
    out = complete_parts(sampler, parents, [0, 1], "airplane", n=2, steps=FAST.steps, resample=2)
    kept = expert_mask(sampler, [0, 1])
    assert out.shape == (4, sampler.layout.dim)
    rows = parents.repeat_interleave(2, 0)
    assert torch.equal(out[:, kept], rows[:, kept])
    assert torch.isfinite(out).all() and not torch.equal(out[:, ~kept], rows[:, ~kept])
    assert not torch.equal(out[0, ~kept], out[1, ~kept])  # two completions of one parent differ
    # resampling changes the chain, not the promise
    plain = complete_parts(sampler, parents[:1], [0, 1], "airplane", steps=FAST.steps, resample=1)
    assert torch.equal(plain[0, kept], parents[0, kept]) and not torch.equal(plain[0], out[0])


def test_nothing_or_everything_kept_is_refused(sampler, weights, airplanes):
    parents = weights.load_flat(airplanes[:1])
    with pytest.raises(InputError, match="at least one part"):
        complete_parts(sampler, parents, [], "airplane")
    with pytest.raises(InputError, match="nothing left"):
        complete_parts(sampler, parents, [0, 1, 2, 3], "airplane")


def test_run_complete_writes_outputs_and_reports_kept_parts(sampler, weights, chairs, tmp_path):
    out = tmp_path / "complete"
    summary = run_complete(sampler, out, source=chairs[0], keep="seat,back", weights=weights, n=2, cfg=FAST)
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["category"] == "chair" and summary["kept"] == ["seat", "back"]
    assert summary["generated"] == ["leg", "arm"] and summary["kept_bit_identical"] is True
    assert summary["resample"] == FAST.resample and len(summary["kept_part_cd_to_parent"]) == 2
    assert [m["name"] for m in summary["meshes"]] == ["parent", "completion_00", "completion_01"]
    assert all((out / m["file"]).stat().st_size > 0 for m in summary["meshes"] if m["file"])
    assert (out / "strip.png").stat().st_size > 1000
    with pytest.raises(InputError, match="valid parts: back, seat, leg, arm"):
        run_complete(sampler, tmp_path / "y", source=chairs[0], keep="wing", weights=weights, cfg=FAST)
