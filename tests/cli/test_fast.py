"""The CLI answers `--help` and argument errors without importing torch, MLflow or Lightning (seconds
each), and a failed command leaves no empty `--out` folder behind."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from shd.cli import app

HEAVY = ("torch", "mlflow", "lightning", "dvc", "optuna")
# Each argument error with the words its one-line message must hold.
ARGUMENT_ERRORS = [
    (["sample", "--format", "stl"], "--format: expected one of obj, ply, glb, got 'stl'"),
    (["sample", "--device", "tpu"], "--device: expected auto, cpu, cuda or cuda:<index>"),
    (["sample", "--model", "/nowhere/model"], "/nowhere/model: no such model"),
    (["info", "--model", "/nowhere/model"], "/nowhere/model: no such model"),
    (["hybrid", "--model", "/nowhere/model"], "no such model"),
    (
        [
            "interpolate",
            "--parent-a",
            "sample:0",
            "--parent-b",
            "sample:1",
            "--part",
            "wing",
            "--device",
            "x",
        ],
        "--device: expected auto",
    ),
    (["complete", "--parent", "sample:0", "--keep", "body", "--model", "/nowhere"], "no such model"),
    (
        ["promote", "shd-airplane", "1", "--on-split-mismatch", "maybe"],
        "--on-split-mismatch: expected one of promote, keep, got 'maybe'",
    ),
]

PROBE = """
import json, sys
from typer.testing import CliRunner
from shd.cli import app
cases = json.loads(sys.argv[1])
out = []
for args in [["--help"], ["sample", "--help"]] + cases:
    r = CliRunner().invoke(app, args)
    out.append({"code": r.exit_code, "output": r.output})
out.append(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(",")))
print(json.dumps(out))
"""


def test_help_and_argument_errors_import_no_heavy_library(tmp_path):
    cases = [
        args + ["--out", str(tmp_path / "o")] if args[0] != "promote" and args[0] != "info" else args
        for args, _ in ARGUMENT_ERRORS
    ]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(cases), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    *results, imported = json.loads(done.stdout)
    assert results[0]["code"] == 0 and results[1]["code"] == 0
    for result, (args, says) in zip(results[2:], ARGUMENT_ERRORS, strict=True):
        assert result["code"] == 2 and says in result["output"], (args, result)
    assert imported == [], f"argument errors imported {imported}"
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_failed_commands_leave_no_empty_out_folder(tmp_path):
    not_a_model = tmp_path / "empty-model"
    not_a_model.mkdir()
    runner = CliRunner()
    for command in (["sample"], ["hybrid"], ["complete", "--parent", "sample:0", "--keep", "body"]):
        out = tmp_path / "new" / command[0]
        result = runner.invoke(
            app, [*command, "--model", str(not_a_model), "--out", str(out), "--device", "cpu"]
        )
        assert result.exit_code == 2 and "no exported shd diffusion model" in result.output, result.output
        assert not (tmp_path / "new").exists(), command


def test_cli_choices_match_the_library():
    from shd.cli.common import MeshFormat
    from shd.cli.models import SplitPolicy
    from shd.eval.export import FORMATS
    from shd.tracking.registry import POLICIES

    assert tuple(f.value for f in MeshFormat) == FORMATS
    assert tuple(p.value for p in SplitPolicy) == POLICIES


def test_import_shd_cli_stays_light():
    code = "import sys, shd.cli; print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    done = subprocess.run(
        [sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
