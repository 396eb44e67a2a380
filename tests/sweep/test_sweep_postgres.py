"""One study on a real PostgreSQL server shared by worker processes (what several machines do): the
Optuna storage and the MLflow store are both databases on it. Exact trial budget across 3 workers,
nested MLflow runs under one parent, and a killed worker's trial failed by heartbeat and replaced."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from tests.sweep.conftest import sweep_process, write_params

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@pytest.fixture
def team_stores(postgres, request) -> tuple[str, str]:
    """(Optuna storage URL, MLflow tracking URI): two new databases on the session's server."""
    tag = f"{request.node.name[:20].lower()}_{os.getpid()}".replace("-", "_").replace("[", "_")
    return postgres.create_database(f"optuna_{tag}"), postgres.create_database(f"mlflow_{tag}")


def _runs(tracking: str, study: str) -> tuple[list, list]:
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("sweep")
    runs = client.search_runs([exp.experiment_id], f"tags.`shd.sweep.study` = '{study}'")
    parents = [r for r in runs if r.data.tags["shd.sweep.role"] == "study"]
    return parents, [r for r in runs if r.data.tags["shd.sweep.role"] == "trial"]


@pytest.mark.slow
def test_three_workers_share_one_postgres_study(sweep_project: Path, team_stores) -> None:
    storage, tracking = team_stores
    env = {"MLFLOW_TRACKING_URI": tracking}
    args = ("overfit", "--trials", "6", "--storage", storage)
    procs = [sweep_process(sweep_project, *args, "--worker", str(i), env=env) for i in range(3)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[-3000:] for o in outputs]
    trials = optuna.load_study(study_name="overfit", storage=storage).trials
    assert sum(t.state in FINISHED for t in trials) == 6
    assert all(t.user_attrs.get("surplus") for t in trials if t.state == optuna.trial.TrialState.FAIL)
    parents, runs = _runs(tracking, "overfit")
    assert len(parents) == 1
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parents[0].info.run_id}
    assert sorted(int(r.data.tags["shd.sweep.trial"]) for r in runs) == [
        t.number for t in trials if t.user_attrs.get("mlflow_run_id")
    ]


@pytest.mark.slow
def test_killed_worker_trial_is_failed_by_heartbeat_on_postgres(sweep_project: Path, team_stores) -> None:
    storage, tracking = team_stores
    env = {"MLFLOW_TRACKING_URI": tracking}
    long_fit = {
        "max_steps": 2000,
        "check_every": 10,
        "init": "seed",
        "points_per_step": 128,
        "splits": ["train"],
    }
    write_params(sweep_project, {"overfit": {"fixed": long_fit}})
    proc = sweep_process(sweep_project, "overfit", "--storage", storage, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            running = optuna.load_study(study_name="overfit", storage=storage).get_trials(
                states=(optuna.trial.TrialState.RUNNING,)
            )
            if running and running[0].user_attrs.get("mlflow_run_id"):
                break
        except KeyError:  # the study is not created yet
            pass
        time.sleep(0.5)
    else:
        raise AssertionError("no trial started within 300 s")
    time.sleep(2.5)  # a heartbeat is on record, the trial is mid-fit
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    write_params(sweep_project)  # the short budget for the second worker
    second = sweep_process(sweep_project, "overfit", "--storage", storage, env=env)
    out = second.communicate(timeout=900)[0]
    assert second.returncode == 0, out[-3000:]
    trials = optuna.load_study(study_name="overfit", storage=storage).trials
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 3
    stale = trials[running[0].number]
    assert stale.state == optuna.trial.TrialState.FAIL
    run = MlflowClient(tracking).get_run(stale.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["shd.sweep.state"] == "failed"
