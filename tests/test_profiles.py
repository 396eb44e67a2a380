"""`make repro PROFILE=<name>`: a profile runs in its own DVC project under runs/, so the checkout's
params.yaml, dvc.lock and git status stay as they were (on a copy of the repository's files in tmp_path)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
needs_tools = pytest.mark.skipif(
    not (shutil.which("make") and shutil.which("git") and (BIN / "dvc").exists()),
    reason="needs make, git and dvc beside the test's python",
)


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout of the files the mechanism touches, committed and clean."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("Makefile", "dvc.yaml", "params.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    for name in ("params-profiles", "pipelines", "src", ".dvc"):
        shutil.copytree(
            ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache")
        )
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
    ):
        assert _run(cmd, repo).returncode == 0
    return repo


@needs_tools
def test_a_profile_workspace_holds_the_profile_and_leaves_the_checkout_clean(checkout: Path):
    params_before = (checkout / "params.yaml").read_text()
    made = _run(["make", "workspace", "PROFILE=shapenet-gpu", f"BIN={BIN}"], checkout)
    assert made.returncode == 0, made.stderr
    ws = checkout / "runs" / "shapenet-gpu"
    profile = yaml.safe_load((checkout / "params-profiles" / "shapenet-gpu.yaml").read_text())
    assert yaml.safe_load((ws / "params.yaml").read_text()) == profile
    assert profile["prepare"]["split_sizes"] == {"train": 3237, "val": 202, "test": 606}
    assert (ws / "dvc.yaml").read_text() == (checkout / "dvc.yaml").read_text()
    assert (ws / "pipelines" / "train.py").exists() and (ws / "src" / "shd" / "config.py").exists()
    assert "no_scm = True" in (ws / ".dvc" / "config").read_text()
    # DVC sees the whole pipeline there, reading the profile as the stages' params.yaml
    dag = _run([str(BIN / "dvc"), "dag", "--md"], ws)
    assert dag.returncode == 0, dag.stderr
    assert all(
        stage in dag.stdout for stage in ("prepare", "sample", "overfit", "train", "evaluate", "register")
    )
    # the checkout: same params.yaml, nothing new for git, and the root DVC project does not see runs/
    assert (checkout / "params.yaml").read_text() == params_before
    assert _run(["git", "status", "--porcelain"], checkout).stdout == ""
    root_dag = _run([str(BIN / "dvc"), "dag", "--md"], checkout)
    assert root_dag.returncode == 0 and "runs/" not in root_dag.stdout


@needs_tools
def test_an_unknown_profile_is_refused_with_the_profiles_there_are(checkout: Path):
    made = _run(["make", "workspace", "PROFILE=nope", f"BIN={BIN}"], checkout)
    assert made.returncode != 0
    assert "params-profiles/nope.yaml: no such profile" in made.stderr and "shapenet-gpu" in made.stderr
    assert not (checkout / "runs" / "nope").exists()
