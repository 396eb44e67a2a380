"""End-to-end smoke test: the real `dvc repro` of the whole pipeline on a tiny config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.tiny_project import REPO, make_project, tiny_params


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A throwaway copy of the DVC project (code linked, params tiny)."""
    root = make_project(tmp_path_factory.mktemp("project"))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc(root, "init", "-q")
    return root


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the project's own store
    env = {
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_repro_runs_all_stages_then_is_a_no_op(project):
    first = dvc(project, "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads((project / "reports/validation.json").read_text())
    assert report["n_total"] == 9 and report["n_kept"] >= 5
    manifest = json.loads((project / "data/samples/manifest.json").read_text())
    assert manifest["n_shapes"] == report["n_kept"]
    assert set(manifest["categories"]) == {"airplane", "chair"}
    assert (project / "reports/validation_docs/index.html").exists()
    overfit = json.loads((project / "metrics/overfit.json").read_text())
    assert overfit["n_shapes"] == manifest["n_shapes"] and 0.0 <= overfit["iou_mean"] <= 1.0
    train = json.loads((project / "metrics/train.json").read_text())
    assert train["epochs"] == 2 and (project / "models/diffusion/model/model.safetensors").exists()
    evaluation = json.loads((project / "metrics/eval.json").read_text())
    assert evaluation["generator"] == "diffusion" and evaluation["n_generated"] >= 1
    assert "train_as_generator" in evaluation["yardsticks"]
    registered = json.loads((project / "metrics/register.json").read_text())
    assert registered["name"] == "shd-airplane-chair" and registered["version"] == 1
    assert registered["decision"] in ("promoted", "refused")  # refused exactly when a metric is NaN
    assert (project / "reports/eval_report.html").exists() and (project / "data/eval/samples.json").exists()
    second = dvc(project, "repro")
    assert second.returncode == 0
    assert "didn't change, skipping" in second.stdout + second.stderr
    status = dvc(project, "status")
    assert "up to date" in status.stdout.lower()


def test_bad_params_is_one_clear_line(project, tmp_path):
    params = tiny_params()
    params["prepare"]["source"] = "nowhere"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        run = subprocess.run(
            [sys.executable, "pipelines/prepare.py"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        (project / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    assert run.returncode == 2
    assert "params.yaml:prepare.source" in run.stderr and "Traceback" not in run.stderr
