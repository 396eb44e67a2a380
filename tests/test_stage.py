"""The DVC metrics files: numbers only (dvc exp show / dvc metrics diff compare them), tracked by git."""

from __future__ import annotations

import json
import math
import subprocess

import pytest
import yaml

from shd.stage import headline_metrics, write_metrics
from tests.tiny_project import REPO

# The shape of the train stage's summary (shd.diffusion.train): strings, ids, timings beside the numbers.
SUMMARY = {
    "epochs": 2,
    "train_loss": 0.25,
    "val_loss": float("nan"),
    "val_loss_raw": None,
    "categories": "airplane,chair",
    "run_id": "0f3c",
    "resumed": False,
    "seconds": 12.5,
    "val_generation": {"airplane": {"mmd": 0.01, "mesh_status": "ok"}},
}


def test_headline_metrics_are_only_numbers():
    names = ("epochs", "train_loss", "val_loss", "val_loss_raw", "resumed")
    picked = headline_metrics(SUMMARY, {k: k for k in names})
    assert picked == {"epochs": 2, "train_loss": 0.25, "resumed": 0}  # NaN and None left out
    assert headline_metrics(SUMMARY, {"mmd": "val_generation.airplane.mmd", "x": "absent.key"}) == {
        "mmd": 0.01
    }


@pytest.mark.parametrize(
    "key", ["run_id", "categories", "val_generation.airplane.mesh_status", "val_generation"]
)
def test_a_string_or_a_document_is_refused(key):
    with pytest.raises(TypeError, match=key):
        headline_metrics(SUMMARY, {"name": key})


def test_written_metrics_file_parses_to_finite_numbers(tmp_path):
    path = tmp_path / "metrics/train.json"
    write_metrics(path, SUMMARY, {k: k for k in ("epochs", "train_loss", "val_loss")})
    doc = json.loads(path.read_text())
    assert doc == {"epochs": 2, "train_loss": 0.25}
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in doc.values())


def _declared_metrics() -> list[str]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return [
        next(iter(m)) if isinstance(m, dict) else m for s in stages.values() for m in s.get("metrics", [])
    ]


def test_declared_metrics_live_under_metrics_and_git_tracks_them():
    """`dvc exp show` / `dvc metrics diff HEAD` read uncached metrics from git: none may be gitignored."""
    declared = _declared_metrics()
    assert declared and all(m.startswith("metrics/") for m in declared), declared
    for path in [*declared, "dvc.lock"]:
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO, check=False)
        assert ignored.returncode == 1, f"{path} is gitignored"


def test_declared_metrics_are_uncached():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in stages.values():
        for m in stage.get("metrics", []):
            assert isinstance(m, dict) and next(iter(m.values())) == {"cache": False}, m
