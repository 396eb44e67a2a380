"""End-to-end smoke test: the real `dvc repro` of the whole pipeline on a tiny config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "prepare": {"counts": {"airplane": 6, "chair": 3}},
    "validate": {"min_pass_rate": 0.5},
    "sample": {"n_near": 1500, "n_uniform": 1500, "n_eval_near": 500, "n_eval_uniform": 500,
               "n_surface": 256, "shard_size": 4},
    "overfit": {"max_steps": 40, "points_per_step": 256, "check_every": 20, "warmup_steps": 5,
                "init": "seed", "min_iou": 0.0, "min_part_iou": 0.0},
    "diffusion": {"train": {"max_epochs": 2, "batch_size": 8, "val_every": 2, "val_check_every": 1,
                            "val_samples": 2, "val_steps": 4, "val_resolution": 16}},
    "evaluate": {"resolution": 24, "n_points": 256, "render_count": 2, "render_resolution": 24},
}


def tiny_params() -> dict:
    """The repository's params.yaml with the tiny overrides applied section by section."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A throwaway copy of the DVC project (code linked, params tiny)."""
    root = tmp_path_factory.mktemp("project")
    for name in ("dvc.yaml", "pipelines"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    (root / "src").symlink_to(REPO / "src")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc(root, "init", "-q")
    return root


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "false"}
    return subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=root, env=env,
                          capture_output=True, text=True, check=False)


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
        run = subprocess.run([sys.executable, "pipelines/prepare.py"], cwd=project, env=env,
                             capture_output=True, text=True, check=False)
    finally:
        (project / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    assert run.returncode == 2
    assert "params.yaml:prepare.source" in run.stderr and "Traceback" not in run.stderr
