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
    overfit = json.loads((project / "reports/overfit.json").read_text())
    assert overfit["n_shapes"] == manifest["n_shapes"] and 0.0 <= overfit["iou_mean"] <= 1.0
    train = json.loads((project / "reports/train.json").read_text())
    assert train["epochs"] == 2 and (project / "models/diffusion/model/model.safetensors").exists()
    for path in ("validation", "overfit", "train", "eval"):  # DVC metrics: only numbers
        numbers = json.loads((project / f"metrics/{path}.json").read_text())
        assert numbers and all(type(v) in (int, float) for v in numbers.values()), (path, numbers)
    assert json.loads((project / "metrics/train.json").read_text())["epochs"] == 2
    log = first.stdout + first.stderr
    for task in ("prepare", "validate: shape statistics", "sample", "overfit", "train", "meshing at 24^3"):
        assert f"{task}: " in log and "ETA" in log.split(f"{task}: ", 1)[1].splitlines()[0], task
    assert "Tip:" not in log and "LeafSpec" not in log  # silenced centrally (shd.progress)
    evaluation = json.loads((project / "reports/eval.json").read_text())
    assert evaluation["generator"] == "diffusion" and evaluation["n_generated"] >= 1
    assert "train_as_generator" in evaluation["yardsticks"]
    registered = json.loads((project / "reports/register.json").read_text())
    assert registered["name"] == "shd-airplane-chair" and registered["version"] == 1
    assert registered["decision"] in ("promoted", "refused")  # refused exactly when a metric is NaN
    assert (project / "reports/eval_report.html").exists() and (project / "data/eval/samples.json").exists()
    metrics = dvc(project, "metrics", "show", "--json")
    assert metrics.returncode == 0, metrics.stderr
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


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _metrics_of(entry: dict) -> dict[str, dict]:
    """{metrics file: its numbers} of one row of `dvc exp show --json`; a file DVC could not read fails."""
    files = entry["data"]["metrics"]
    assert all("error" not in f for f in files.values()), files
    return {path: f["data"] for path, f in files.items()}


@pytest.mark.slow
def test_experiments_show_their_metrics(project):
    """The DVC way (example-get-started): metrics and dvc.lock in git, `dvc exp run -S` then `dvc exp show`
    shows each experiment's numbers. Runs the whole tiny pipeline when the repro test did not run first."""
    if not (project / "dvc.lock").exists():
        assert dvc(project, "repro").returncode == 0
    (project / ".gitignore").write_text((REPO / ".gitignore").read_text() + "/src\n")
    git(project, "add", "-A")
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    tracked = set(git(project, "ls-files").split())
    assert {"dvc.lock", "metrics/train.json", "metrics/eval.json", "metrics/overfit.json"} <= tracked
    assert not {p for p in tracked if p.startswith(("reports/", "data/", "models/", "mlruns/"))}
    assert dvc(project, "metrics", "diff", "HEAD").returncode == 0

    run = dvc(project, "exp", "run", "-S", "diffusion.train.max_epochs=3", "--name", "longer")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    shown = dvc(project, "exp", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    baseline = next(r for r in rows if r["rev"] != "workspace")
    experiment = next(e["revs"][0] for e in baseline["experiments"] or [] if e["revs"][0]["name"] == "longer")
    for row, epochs in ((baseline, 2), (experiment, 3)):
        numbers = _metrics_of(row)
        assert numbers["metrics/train.json"]["epochs"] == epochs
        assert "nna_train" in numbers["metrics/eval.json"]
        for values in numbers.values():
            assert all(isinstance(v, int | float) for v in values.values()), values
    diff = dvc(project, "metrics", "diff", "HEAD", "--json")
    assert diff.returncode == 0 and json.loads(diff.stdout)["metrics/train.json"]["epochs"]["diff"] == 1
