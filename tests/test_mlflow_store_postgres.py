"""The registry lock on a real PostgreSQL: chosen for a Postgres store (or SHD_LOCK_URI), exclusive across
processes, freed by the server when its holder dies, and a clear error when the server is down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from shd.errors import InputError
from shd.mlflow_store import advisory_lock, lock_uri, store_lock
from tests.tiny_project import REPO

HOLD = """
import sys, time
from shd.mlflow_store import advisory_lock
with advisory_lock(sys.argv[1], "registry"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_lock_follows_the_store(monkeypatch, tmp_path):
    monkeypatch.delenv("SHD_LOCK_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u@h/mlflow")
    assert lock_uri() == "postgresql://u@h/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert lock_uri() is None
    monkeypatch.setenv("SHD_LOCK_URI", "postgresql://u@h/mlflow")
    assert lock_uri() == "postgresql://u@h/mlflow"


def test_advisory_lock_excludes_other_processes_and_dies_with_its_holder(pg_database, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pg_database)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, pg_database], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        got = threading.Event()

        def take() -> None:
            with store_lock("registry"):
                got.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        time.sleep(2)
        assert not got.is_set(), "the lock was taken while another process held it"
        holder.send_signal(signal.SIGKILL)  # dies holding it: the server frees it with the connection
        assert got.wait(30), "the lock of a dead holder was never freed"
    finally:
        holder.kill()
        holder.wait()


def test_server_down_is_one_clear_error(postgres):
    url = f"postgresql://shd@127.0.0.1:{postgres.port + 1 if postgres.port < 65535 else 1}/nowhere"
    with pytest.raises(InputError) as err, advisory_lock(url, "registry"):
        pass
    assert "nowhere" in str(err.value) and "not usable" in str(err.value)
