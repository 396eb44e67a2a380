"""Services: an MLflow server that is not there, or a SQLite store locked by another process, ends in
one clear error naming the store after bounded retries, and the stage's local results are kept.

(Optuna study and registry concurrency belong to the sweep/register suites; they reuse killing.py.)
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from shd.errors import InputError
from shd.tracking import ensure_experiment, log_stage_run
from tests.tiny_project import run_stage, stage_env


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unreachable(monkeypatch) -> str:
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    return uri


def test_an_unreachable_server_is_one_clear_error(unreachable, tmp_path):
    start = time.monotonic()
    with pytest.raises(InputError, match=rf"MLflow store {unreachable}: not usable .*Connection refused"):
        log_stage_run("shd-test", "run", {"a": 1}, {"m": 1.0}, artifacts=[tmp_path])
    assert time.monotonic() - start < 60  # bounded: one retry, no backoff


def test_default_retries_are_bounded():
    """Without the user's settings a stage gives up in seconds, not MLflow's minutes (7 retries, 120 s)."""
    import shd.mlflow_store  # noqa: F401  (sets the defaults on import)

    assert int(os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) <= 3
    assert int(os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]) <= 30


@pytest.mark.slow
def test_overfit_keeps_its_results_when_the_server_is_down(project_copy, unreachable):
    """The stage writes weights and metrics, then logging fails: exit 2 with one line, nothing lost,
    and the rerun (server back) refits nothing."""
    root = project_copy(("data/samples",))
    env = {
        **stage_env(),
        "MLFLOW_TRACKING_URI": unreachable,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    }
    import subprocess
    import sys

    down = subprocess.run(
        [sys.executable, "pipelines/overfit.py"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.returncode == 2 and "Traceback" not in down.stderr, down.stderr
    assert f"MLflow store {unreachable}: not usable" in down.stderr
    assert (root / "data/weights/manifest.json").exists() and (root / "metrics/overfit.json").exists()
    back = run_stage(root, "overfit")
    assert back.returncode == 0, back.stderr
    assert json.loads((root / "reports/overfit.json").read_text())["fitted_shards"] == 0


@pytest.mark.slow
def test_a_locked_sqlite_store_is_one_clear_error(tmp_path, monkeypatch):
    """Another process holds an exclusive lock: MLflow's busy timeout (20 s) bounds the wait."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "params.yaml").write_text("{}\n")  # a project: its store is ./mlruns
    monkeypatch.chdir(tmp_path)
    ensure_experiment("shd-test")
    lock = sqlite3.connect(Path("mlruns/mlflow.db"), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(InputError, match=r"MLflow store sqlite:.*mlflow\.db: not usable .*locked"):
            log_stage_run("shd-test", "run", {"a": 1}, {"m": 1.0})
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert log_stage_run("shd-test", "run", {"a": 1}, {"m": 1.0})  # free again: logging works
