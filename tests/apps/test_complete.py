import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from shd.apps.complete import complete_parts, run_complete
from shd.apps.config import AppsConfig
from shd.apps.parents import expert_mask
from shd.cli import app
from shd.diffusion.api import load_model
from shd.diffusion.config import NetConfig, ScheduleConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.export import export_model
from shd.diffusion.normalization import Normalizer
from shd.diffusion.sampler import WeightSampler
from shd.diffusion.tokens import TokenLayout
from shd.errors import InputError
from shd.fields.layout import make_layout
from shd.fields.weight_set import WeightSet
from tests.diffusion.conftest import make_weight_set
from tests.eval.evaluate_data import BOX_FIELD, PARTS, box_weights

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


# Box-field airplanes (tests/eval/evaluate_data.py): each expert is one box, so which parts a mesh shows
# is known exactly. The parent has no tail and no engine, like the CPU profile's fits (tail IoU 0).
BODY, WING = ((0.0, 0.0, 0.0), (0.3, 0.06, 0.06)), ((0.0, 0.0, 0.0), (0.08, 0.03, 0.3))
TAIL, ENGINE = ((-0.3, 0.1, 0.0), (0.05, 0.08, 0.04)), ((0.05, -0.1, 0.15), (0.06, 0.04, 0.04))


def _box_model(folder: Path, tail_and_engine: bool) -> WeightSampler:
    """A real exported model whose samples stay within 1e-3 of one box airplane (a denoiser whose
    normalization pins them there), with or without its tail and engine."""
    target = box_weights([BODY, WING, *((TAIL, ENGINE) if tail_and_engine else (None, None))], BOX_FIELD)
    torch.manual_seed(0)
    layout = make_layout(BOX_FIELD, PARTS)
    net = Denoiser(NetConfig(depth=1, width=16, heads=2), TokenLayout(layout))
    normalizer = Normalizer(target, torch.full((layout.dim,), 1e-4), "scalar")
    export_model(folder, net, ScheduleConfig(timesteps=20), normalizer, BOX_FIELD, ["airplane"], "boxes")
    return load_model(folder, "cpu")


def _parent_set(root: Path) -> WeightSet:
    parent = box_weights([((0.05, 0.0, 0.0), (0.35, 0.05, 0.05)), WING, None, None], BOX_FIELD)
    return WeightSet.open(make_weight_set(root, parent[None], ["train"], ["airplane"], field=BOX_FIELD))


BOX_APPS = AppsConfig(steps=4, resample=2, resolution=24, n_points=256, device="cpu")


def test_completion_adds_the_generated_parts_to_the_parent(tmp_path):
    """A model that generates a tail and an engine: the completions' weights and meshes differ from the
    parent's, and their tail and engine have faces (the parent's have none)."""
    sampler, weights = _box_model(tmp_path / "model", True), _parent_set(tmp_path / "weights")
    summary = run_complete(
        sampler, tmp_path / "out", source="airplane_000", keep="body,wing", weights=weights, n=2, cfg=BOX_APPS
    )
    parent_faces, completions = summary["part_faces"]["parent"], summary["part_faces"]["completions"]
    assert parent_faces["tail"] == parent_faces["engine"] == 0 and parent_faces["body"] > 0
    assert all(f["tail"] > 0 and f["engine"] > 0 and f["body"] > 0 for f in completions)
    assert summary["same_mesh_as_parent"] == [False, False] and summary["empty_generated"] == []
    assert summary["warning"] is None and summary["kept_bit_identical"]
    written = load_file(str(tmp_path / "out" / "weights.safetensors"))
    generated = ~expert_mask(sampler, [0, 1])
    assert not torch.equal(written["completions"][:, generated], written["parent"][:, generated])
    assert [m["faces"] for m in summary["meshes"][1:]] != [summary["meshes"][0]["faces"]] * 2


def test_completions_that_equal_the_parent_say_why(tmp_path):
    """The reported case: the model generates the tail and engine empty (its fits lacked them), so every
    completion meshes exactly like the parent. The summary and the CLI say so instead of claiming
    generated parts."""
    sampler, weights = _box_model(tmp_path / "model", False), _parent_set(tmp_path / "weights")
    summary = run_complete(
        sampler, tmp_path / "out", source="airplane_000", keep="body,wing", weights=weights, n=2, cfg=BOX_APPS
    )
    assert summary["same_mesh_as_parent"] == [True, True]
    assert summary["empty_generated"] == ["tail", "engine"]
    assert "tail, engine came out empty in every completion" in summary["warning"]
    assert "2 of 2 completions mesh exactly like the parent" in summary["warning"]
    args = ["complete", "--parent", "airplane_000", "--keep", "body,wing", "-n", "2", "--steps", "4"]
    args += [
        "--model",
        str(tmp_path / "model"),
        "--weights",
        str(weights.root),
        "--out",
        str(tmp_path / "cli"),
    ]
    result = CliRunner().invoke(app, [*args, "--resolution", "24", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (
        "generated no visible part" in result.output
        and "warning: tail, engine came out empty" in result.output
    )
