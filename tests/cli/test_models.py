"""`shd sample | evaluate | promote | info | ui` through Typer's CliRunner, on a real SQLite store:
a registered tiny model, the `tiny_project` products (its checkpoint, the register stage), every
error path as one line and exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from shd.cli import app
from shd.diffusion.api import load_model
from shd.tracking.model_ref import load_sampler
from shd.tracking.registry import build_card, register
from tests.tiny_project import run_stage
from tests.tracking.conftest import PARTS, eval_report, export_tiny_model

runner = CliRunner()
NAME = "shd-cli-test"
COMMANDS = ("sample", "evaluate", "promote", "info", "ui")


@pytest.fixture(scope="module")
def registered(store, tmp_path_factory) -> dict:
    """Two versions of a tiny model: v1 champion (1-NNA 0.5), v2 worse (0.7), v3 with NaN metrics."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for k, nna in ((1, 0.5), (2, 0.7), (3, None)):
        folder = export_tiny_model(root / f"m{k}", k)
        card = build_card(
            folder,
            eval_report(nna),
            ["airplane_t"],
            {"airplane": PARTS},
            {"evaluate": {"resolution": 16}},
            {"dvc": {}, "git_commit": None},
        )
        out[k] = {"folder": folder, **register(folder, card, NAME)}
    return out


def error_line(result) -> str:
    """The result must be exit 2 with exactly one `error:` line and no traceback; returns that line."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_every_command_is_listed_with_an_example():
    listed = runner.invoke(app, ["--help"]).output
    for command in COMMANDS:
        assert command in listed
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example: shd " + command in result.output


def test_sample_from_the_champion_writes_meshes_weights_and_a_png(registered, tmp_path):
    out = tmp_path / "samples"
    args = [
        "sample",
        "-n",
        "3",
        "--model",
        f"models:/{NAME}@champion",
        "--out",
        str(out),
        "--render",
        "--format",
        "ply",
        "--steps",
        "3",
        "--resolution",
        "24",
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.ply")) == ["sample_000.ply", "sample_001.ply", "sample_002.ply"]
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weights = load_file(str(out / "weights.safetensors"))["weights"]
    expected = load_model(registered[1]["folder"], "cpu").sample(3, steps=3, seed=0)
    assert torch.equal(weights, expected)  # the champion is version 1
    assert f"wrote 3 ply meshes to {out}" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", f"models:/{NAME}@nobody"], "has no alias 'nobody'"),
        (["--model", "models:/shd-unknown@champion"], "no registered model 'shd-unknown'"),
        (["--model", "/nowhere/model"], "no such model"),
        (["--format", "stl"], "--format: expected one of obj, ply, glb"),
        (["--device", "tpu"], "--device: expected auto, cpu, cuda"),
    ],
)
def test_sample_errors_are_one_line(registered, tmp_path, args, says):
    base = ["sample", "--model", f"models:/{NAME}@champion", "--out", str(tmp_path / "s"), "--steps", "2"]
    assert says in error_line(runner.invoke(app, base + args))


def test_bad_output_path_is_one_line(registered, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        result = runner.invoke(app, ["sample", "--model", f"models:/{NAME}@champion", "--out", str(out)])
        assert str(blocker) in error_line(result)


def test_unreachable_server_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    champion = ["--model", "models:/shd-airplane@champion"]
    for args in (
        ["sample", *champion, "--out", str(tmp_path)],
        ["info", *champion],
        ["promote", "shd-airplane", "1"],
    ):
        assert "cannot reach the MLflow tracking server" in error_line(runner.invoke(app, args))


def test_promote_compares_with_the_champion_and_never_takes_nan(registered):
    kept = runner.invoke(app, ["promote", NAME, str(registered[2]["version"])])
    assert kept.exit_code == 0 and "kept" in kept.output and "does not beat champion" in kept.output
    nan = ["promote", NAME, str(registered[3]["version"]), "--force"]
    assert "NaN" in error_line(runner.invoke(app, nan))
    assert "no registered model" in error_line(runner.invoke(app, ["promote", "shd-unknown", "1"]))
    info = json.loads(runner.invoke(app, ["info", "--model", f"models:/{NAME}@champion"]).output)
    assert info["registry"]["version"] == registered[1]["version"]
    assert info["registry"]["aliases"] == ["champion"]
    assert info["metrics"]["nna"] == 0.5 and info["part_names"] == {"airplane": PARTS}
    assert info["registry"]["tags"]["decision"] == "promoted"


def test_ui_uses_the_same_store(store):
    result = runner.invoke(app, ["ui", "--dry-run", "--port", "5123"])
    assert result.exit_code == 0
    assert "http://127.0.0.1:5123" in result.output
    assert f"--backend-store-uri sqlite:///{(store / 'mlruns' / 'mlflow.db').resolve()}" in result.output


@pytest.fixture(scope="module")
def project(tiny_project, store, tmp_path_factory) -> Path:
    """A copy of the tiny project after its register stage (its metrics are NaN: nothing promoted)."""
    root = tmp_path_factory.mktemp("registered") / "project"
    shutil.copytree(tiny_project, root, symlinks=True)
    done = run_stage(root, "register")
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def test_register_stage_refuses_nan_metrics_then_alias_is_missing(project, monkeypatch, tmp_path):
    record = json.loads((project / "reports/register.json").read_text())
    assert record["name"] == "shd-airplane-chair" and record["decision"] == "refused"
    assert record["champion"] is None
    monkeypatch.chdir(project)
    monkeypatch.setattr("shd.mlflow_store.DEFAULT_DIR", Path("mlruns"))
    result = runner.invoke(
        app, ["sample", "--model", "models:/shd-airplane-chair@champion", "--out", str(tmp_path)]
    )
    assert "has no alias 'champion'" in error_line(result)
    info = json.loads(runner.invoke(app, ["info", "--model", "models:/shd-airplane-chair/1"]).output)
    assert info["registry"]["tags"]["decision"] == "refused" and info["lineage"]["train_run_id"]
    train_run = info["lineage"]["train_run_id"]  # the train stage logged the exported folder as `model`
    for ref in (train_run, f"runs:/{train_run}/model"):
        assert torch.equal(
            load_sampler(ref, "cpu").sample(1, steps=2, seed=1),
            load_sampler("models/diffusion/model", "cpu").sample(1, steps=2, seed=1),
        )
    assert info["data"]["dvc"] == {} or all(v for v in info["data"]["dvc"].values())


def test_checkpoint_and_folder_sample_the_same_and_evaluate_writes_metrics(project, tmp_path, monkeypatch):
    ckpt = project / "models/diffusion/checkpoints/last.ckpt"
    folder = project / "models/diffusion/model"
    assert torch.equal(
        load_sampler(str(ckpt), "cpu").sample(2, steps=2, seed=4),  # EMA net = export
        load_sampler(str(folder), "cpu").sample(2, steps=2, seed=4),
    )
    result = runner.invoke(
        app,
        [
            "sample",
            "-n",
            "2",
            "--model",
            str(ckpt),
            "--out",
            str(tmp_path / "c"),
            "--steps",
            "2",
            "--resolution",
            "12",
            "--no-redraw-empty",
        ],
    )
    if result.exit_code:  # the 2-epoch tiny model may well give no surface at all: then it says so
        assert "no usable shape in 2 samples" in error_line(result)
        assert not (tmp_path / "c" / "weights.safetensors").exists()
    else:
        assert (tmp_path / "c" / "weights.safetensors").exists()
    info = json.loads(runner.invoke(app, ["info", "--model", str(ckpt)]).output)
    assert info["categories"] == ["airplane", "chair"] and "net" in info["params"]
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert "not a loadable shd training checkpoint" in error_line(
        runner.invoke(app, ["sample", "--model", str(bad), "--out", str(tmp_path / "x")])
    )

    metrics = tmp_path / "eval" / "cli.json"
    args = [
        "evaluate",
        "--model",
        str(project / "models/diffusion/model"),
        "--out",
        str(metrics),
        "--weights",
        str(project / "data/weights"),
        "--samples",
        str(project / "data/samples"),
        "--params",
        str(project / "params.yaml"),
        "--device",
        "cpu",
    ]
    cwd = tmp_path / "cwd"  # evaluate writes only beside --out: nothing lands in the working folder
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    project_eval = {p: p.read_bytes() for p in (project / "data" / "eval").iterdir()}
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert not list(cwd.iterdir())
    assert {p: p.read_bytes() for p in (project / "data" / "eval").iterdir()} == project_eval
    names = sorted(p.name for p in metrics.parent.iterdir())
    assert names == ["cli.generated.safetensors", "cli.json", "cli.nn_cd.csv", "cli.png", "cli.samples.json"]
    report = json.loads(metrics.read_text())
    stage = json.loads((project / "reports/eval.json").read_text())
    assert report["generator"] == str(project / "models/diffusion/model")
    assert report["n_generated"] == stage["n_generated"] and report["n_reference"] == stage["n_reference"]
    assert metrics.with_suffix(".nn_cd.csv").exists()
    not_json = args[:3] + ["--out", str(tmp_path / "m.txt")]
    assert "expected a .json file" in error_line(runner.invoke(app, not_json))


def test_every_evaluation_file_of_evaluate_out_goes_beside_it(tmp_path):
    """`shd evaluate --out X.json` routes every EvalPaths file next to X (a field added to EvalPaths
    without a place beside X would land in the working folder, e.g. the project's data/eval)."""
    from dataclasses import fields

    from shd.eval.config import EvalPaths

    placed = EvalPaths.beside(tmp_path / "x.json")
    where = {f.name: getattr(placed, f.name) for f in fields(EvalPaths)}
    assert all(p.parent == tmp_path and p.name.startswith("x.") for p in where.values()), where
    assert len(set(where.values())) == len(where)
