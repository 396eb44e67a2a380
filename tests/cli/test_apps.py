"""`shd hybrid | interpolate | complete` on the tiny project's real model and weight set."""

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from shd.cli import app

runner = CliRunner()
# fast settings through the params file, as a project would set them (level: see tests/apps/conftest.py)
APPS = {
    "steps": 4,
    "resample": 2,
    "interp_steps": 3,
    "resolution": 24,
    "n_points": 256,
    "level": -1.0,
    "device": "cpu",
    "mesh_format": "obj",
}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture
def common(tiny_project, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"apps": APPS}))
    return [
        "--model",
        str(tiny_project / "models/diffusion/model"),
        "--weights",
        str(tiny_project / "data/weights"),
        "--params",
        str(params),
    ]


def test_top_level_help_lists_the_commands_and_parent_syntax():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("hybrid", "interpolate", "complete"):
        assert command in result.output
    for command in ("hybrid", "interpolate", "complete"):
        text = runner.invoke(app, [command, "--help"]).output
        assert "sample:<seed>" in text and "Examples" in text and "params.yaml" in text


def test_hybrid_command_writes_its_folder_with_params_defaults(common, tmp_path):
    out = tmp_path / "h"
    result = runner.invoke(
        app,
        [
            "hybrid",
            *common,
            "--parent-a",
            "proc-airplane-00000",
            "--parent-b",
            "proc-airplane-00001",
            "--parts-a",
            "engine",
            "--parts-b",
            "body,wing,tail",
            "--harmonize",
            "0.3",
            "-n",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resolution"] == 24 and summary["steps"] == 4 and summary["mesh_format"] == "obj"
    assert summary["harmonize"] == 0.3 and len(summary["part_cd_to_source"]["harmonized"]) == 2
    assert (out / "strip.png").exists() and (out / "parent_a.obj").stat().st_size > 0
    assert "part CD to its source" in result.output


def test_interpolate_and_complete_commands(common, tmp_path):
    result = runner.invoke(
        app,
        [
            "interpolate",
            *common,
            "--parent-a",
            "proc-airplane-00000",
            "--parent-b",
            "sample:2",
            "--part",
            "wing",
            "--frames",
            "4",
            "--out",
            str(tmp_path / "i"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "i" / "summary.json").read_text())
    assert summary["frames"] == 4 and (tmp_path / "i" / "slerp.gif").exists() and "jump" in result.output
    result = runner.invoke(
        app,
        [
            "complete",
            *common,
            "--parent",
            "proc-chair-00000",
            "--keep",
            "back,seat",
            "-n",
            "2",
            "--resample",
            "3",
            "--out",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["resample"] == 3 and summary["kept_bit_identical"] is True
    assert "bit-identical: True" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["complete", "--parent", "proc-airplane-00000", "--keep", "body,rudder"],
            "--keep: part 'rudder': not a part of airplane; valid parts: body, wing, tail, engine",
        ),
        (
            [
                "hybrid",
                "--parent-a",
                "proc-airplane-00000",
                "--parent-b",
                "proc-chair-00000",
                "--parts-b",
                "wing",
            ],
            "mix categories",
        ),
        (
            ["interpolate", "--parent-a", "proc-airplane-00000", "--parent-b", "sample:x", "--part", "wing"],
            "the seed must be an integer",
        ),
        (
            [
                "hybrid",
                "--parent-a",
                "proc-airplane-00000",
                "--parent-b",
                "proc-airplane-00001",
                "--harmonize",
                "0",
                "-n",
                "3",
            ],
            "-n: 3 hybrids without harmonization would be 3 identical copies",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(common, tmp_path, args, message):
    result = runner.invoke(app, [args[0], *common, *args[1:], "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o" / "summary.json").exists()


@pytest.mark.slow  # 27 s on the loaded 2-core machine
def test_apps_command_writes_the_examples_and_the_quality_figures(common, tiny_project, tmp_path):
    """`make apps`: the three example folders, then metrics JSON (was pipelines/apps.py, not a stage)."""
    params = yaml.safe_dump(
        {"apps": {**APPS, "harmonize": 0.3, "quality_pairs": 1, "quality_keep": ["body", "wing"]}}
    )
    (tmp_path / "params.yaml").write_text(params)
    out, metrics = tmp_path / "apps", tmp_path / "apps.json"
    samples = ["--samples", str(tiny_project / "data/samples")]
    result = runner.invoke(app, ["apps", *common, *samples, "--out", str(out), "--metrics", str(metrics)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"hybrid", "interpolate", "complete"}
    assert json.loads(metrics.read_text())["completion"]["kept_bit_identical"] is True
    assert f"wrote {out}, {metrics}" in result.output


def test_library_parameter_names_become_the_commands_flags():
    """The library names parameters (parts_a, n, frames); the CLI line names the flags users typed."""
    from shd.cli.apps import hybrid, interpolate
    from shd.cli.common import as_flags
    from shd.errors import InputError

    def shown(where, command):
        return as_flags(InputError(where, "x"), command).where

    assert shown("parts_a/parts_b", hybrid) == "--parts-a/--parts-b"
    assert shown("parts_b: part 'wings'", hybrid) == "--parts-b: part 'wings'"
    assert (shown("n", hybrid), shown("frames", interpolate)) == ("-n", "--frames")
    assert shown("data/weights", hybrid) == "data/weights"  # a path stays a path
    assert shown("parents", hybrid) == "parents"
