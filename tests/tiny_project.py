"""A tiny copy of the DVC project (tiny params) and a session-wide run of its stages, for the tests of
the layers on top (CLI, registry, applications, reports) that need real products of the pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "prepare": {"counts": {"airplane": 6, "chair": 3}},
    "validate": {"min_pass_rate": 0.5},
    "sample": {
        "n_near": 1500,
        "n_uniform": 1500,
        "n_eval_near": 500,
        "n_eval_uniform": 500,
        "n_surface": 256,
        "shard_size": 4,
    },
    "overfit": {
        "max_steps": 40,
        "points_per_step": 256,
        "check_every": 20,
        "warmup_steps": 5,
        "init": "seed",
        "min_iou": 0.0,
        "min_part_iou": 0.0,
    },
    "diffusion": {
        "net": "tiny",
        "train": {
            "max_epochs": 2,
            "batch_size": 8,
            "val_every": 2,
            "val_check_every": 1,
            "val_samples": 2,
            "val_steps": 4,
            "val_resolution": 16,
        },
    },
    "evaluate": {"resolution": 24, "n_points": 256, "render_count": 2, "render_resolution": 24},
}

STAGES = ("prepare", "validate", "sample", "overfit", "train", "evaluate")


def tiny_params() -> dict:
    """The repository's params.yaml with the tiny overrides applied section by section."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    return params


def make_project(root: Path) -> Path:
    """A throwaway copy of the DVC project at `root` (code linked, params tiny), not yet run."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "pipelines"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    (root / "src").symlink_to(REPO / "src")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    return root


def stage_env() -> dict[str, str]:
    """Environment for a stage subprocess: this checkout's code, MLflow under the project's mlruns/."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {
        **env,
        "PYTHONPATH": str(REPO / "src"),
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def run_stage(root: Path, stage: str) -> subprocess.CompletedProcess:
    """Run one stage entry (`python pipelines/<stage>.py`) in the project, as `dvc repro` would."""
    return subprocess.run(
        [sys.executable, f"pipelines/{stage}.py"],
        cwd=root,
        env=stage_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def run_stages(root: Path, stages: tuple[str, ...] = STAGES) -> Path:
    """Run the stages in order; a failure raises with the stage's output."""
    for stage in stages:
        done = run_stage(root, stage)
        if done.returncode != 0:
            raise RuntimeError(f"stage {stage} failed:\n{done.stdout}\n{done.stderr}")
    return root
