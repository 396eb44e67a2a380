"""`shd server` for real: an MLflow server on a PostgreSQL store with served artifacts; a model
registered through it (HTTP only) is promoted and `shd sample --model models:/...@champion` loads it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

from shd.cli import app
from tests.tiny_project import REPO
from tests.tracking.conftest import PARTS, eval_report, export_tiny_model


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(pg_database, tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    args = ["server", "--store", pg_database, "--artifacts", str(tmp_path / "served"), "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "shd.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(
                    f"mlflow server did not come up: {proc.communicate()[0][-3000:]}"
                ) from None
            time.sleep(1)
    yield url, tmp_path / "served"
    os.killpg(proc.pid, 15)
    proc.wait(timeout=60)


def test_server_dry_run_binds_loopback_and_serves_artifacts(tmp_path):
    result = CliRunner().invoke(
        app, ["server", "--store", "postgresql://u@h/db", "--artifacts", str(tmp_path / "a"), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    command = result.output.splitlines()[-1]
    assert "--serve-artifacts" in command and "--host 127.0.0.1" in command
    assert f"--artifacts-destination {tmp_path / 'a'}" in command
    bad = CliRunner().invoke(app, ["server", "--store", "/tmp/nowhere", "--dry-run"])
    assert bad.exit_code == 2 and "--store" in bad.output


@pytest.mark.slow
def test_register_through_the_server_then_sample_the_champion(mlflow_server, tmp_path, monkeypatch):
    from shd.tracking.card import build_card
    from shd.tracking.registry import register

    url, served = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("SHD_MODEL_CACHE", str(tmp_path / "cache"))
    # `shd sample` fails fast on a dead server (15 s); a live one on 2 busy cores may answer slower
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    monkeypatch.chdir(tmp_path)
    folder = export_tiny_model(tmp_path / "m", 1)
    card = build_card(folder, eval_report(0.5), ["airplane_t"], {"airplane": PARTS}, {}, {})
    record = register(folder, card, "shd-team")
    assert record["promoted"]
    assert any(served.rglob("model.safetensors")) or any(served.rglob("*.safetensors"))
    out = tmp_path / "samples"
    args = ["sample", "-n", "2", "--model", "models:/shd-team@champion", "--out", str(out), "--steps", "2"]
    args += ["--resolution", "12"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert list(out.iterdir())
