"""A sweep-ready copy of the session's tiny project: its data/samples and data/weights, params with a
tiny `sweep` section (3 trials, few steps/epochs, short heartbeats so a killed worker is noticed fast)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.tiny_project import REPO, stage_env

TINY_SWEEP = {
    "heartbeat_interval": 1,
    "grace_period": 3,
    "poll_seconds": 0.5,
    "max_failures": 2,
    "overfit": {
        "trials": 3,
        "n_shapes": 2,
        "fixed": {
            "max_steps": 20,
            "check_every": 10,
            "points_per_step": 128,
            "init": "seed",
            "splits": ["train"],
        },
        "space": {
            "field.width": {"type": "int", "low": 8, "high": 24, "step": 8},
            "field.depth": {"type": "int", "low": 1, "high": 2},
            "lr": {"type": "float", "low": 0.001, "high": 0.03, "log": True},
            "schedule": ["onecycle", "constant"],
        },
    },
    "diffusion": {
        "trials": 3,
        "pruner": {"startup_trials": 1},
        "fixed": {
            "train": {
                "max_epochs": 2,
                "val_every": 1,
                "val_samples": 2,
                "val_steps": 3,
                "val_resolution": 12,
                "batch_size": 8,
                "checkpoint_every": 2,
                "log_model": False,
            }
        },
        "space": {
            "net.width": {"type": "int", "low": 16, "high": 32, "step": 16},
            "net.depth": {"type": "int", "low": 1, "high": 2},
            "net.heads": [2, 4],
            "train.lr": {"type": "float", "low": 0.0001, "high": 0.001, "log": True},
            "schedule.prediction": ["x0", "eps"],
            "train.normalization": ["none", "block"],
        },
    },
}


def write_params(root: Path, sweep_overrides: dict | None = None) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["sweep"] = {**params["sweep"], **TINY_SWEEP}
    for kind, values in (sweep_overrides or {}).items():
        params["sweep"][kind] = {**params["sweep"][kind], **values}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def sweep_project(tiny_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path with the tiny project's data and params (tiny sweep section); the working directory."""
    for name in ("data/samples", "data/weights"):
        shutil.copytree(tiny_project / name, tmp_path / name)
    shutil.copy(tiny_project / "params.yaml", tmp_path / "params.yaml")
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def sweep_process(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`shd sweep ...` as its own process in the project (what a second worker or machine runs);
    `env` adds variables (a shared MLFLOW_TRACKING_URI)."""
    env = {**stage_env(), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "shd.cli", "sweep", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
