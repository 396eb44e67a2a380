"""Real sweeps on the tiny project: trials, nested MLflow runs, best params, apply, resume, workers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from shd.cli import app
from shd.tracking import tracking_uri
from tests.sweep.conftest import sweep_process, write_params

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
STORAGE = "sqlite:///sweeps/optuna.db"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _study(name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=STORAGE)


def _runs(study: str) -> tuple[list, list]:
    client = MlflowClient(tracking_uri())
    exp = client.get_experiment_by_name("sweep")
    runs = client.search_runs([exp.experiment_id], f"tags.`shd.sweep.study` = '{study}'")
    parents = [r for r in runs if r.data.tags["shd.sweep.role"] == "study"]
    trials = [r for r in runs if r.data.tags["shd.sweep.role"] == "trial"]
    return parents, trials


def test_overfit_sweep_runs_applies_and_continues(sweep_project: Path) -> None:
    _cli("sweep", "overfit")
    study = _study("overfit")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    parents, trials = _runs("overfit")
    assert len(parents) == 1 and len(trials) == 3
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.tags["shd.sweep.state"] == "complete" and run.info.status == "FINISHED"
        assert {"trial.field.width", "trial.lr", "config.max_steps"} <= set(run.data.params)
        assert 0.0 <= run.data.metrics["objective"] <= 1.0
        assert run.data.metrics["n_shapes"] == 2  # the n_shapes subset, not the whole train split
    assert parents[0].data.metrics["best_value"] == pytest.approx(study.best_value)
    assert (sweep_project / "sweeps/plots/overfit_history.png").stat().st_size > 0

    best = yaml.safe_load((sweep_project / "sweeps/best_overfit.yaml").read_text())
    p = study.best_params
    assert best == {
        "overfit": {
            "field": {"hidden": [p["field.width"]] * p["field.depth"]},
            "lr": p["lr"],
            "schedule": p["schedule"],
        }
    }

    before = (sweep_project / "params.yaml").read_text()
    out = _cli("sweep", "apply", "overfit")
    assert "overfit.lr" in out
    after = yaml.safe_load((sweep_project / "params.yaml").read_text())
    assert after["overfit"]["lr"] == p["lr"] and after["overfit"]["schedule"] == p["schedule"]
    assert after["overfit"]["field"]["hidden"] == [p["field.width"]] * p["field.depth"]
    assert after["diffusion"] == yaml.safe_load(before)["diffusion"]
    assert "already has" in _cli("sweep", "apply", "overfit")

    _cli("sweep", "overfit")  # the budget is met: nothing runs
    assert len(_study("overfit").trials) == 3
    _cli("sweep", "overfit", "--trials", "4")  # a larger budget continues the same study and parent run
    assert sum(t.state in FINISHED for t in _study("overfit").trials) == 4
    parents, trials = _runs("overfit")
    assert len(parents) == 1 and len(trials) == 4


def test_diffusion_sweep_reports_checks_and_writes_best(sweep_project: Path) -> None:
    _cli("sweep", "diffusion")
    study = _study("diffusion")
    assert sum(t.state in FINISHED for t in study.trials) == 3
    assert all(t.state in FINISHED for t in study.trials)
    # the pruning callback reported the generation check of every epoch (val_every 1, 2 epochs)
    for t in study.trials:
        assert set(t.intermediate_values) <= {0, 1} and t.intermediate_values
    parents, trials = _runs("diffusion")
    assert len(parents) == 1 and len(trials) == 3
    for run in trials:
        assert run.data.tags["shd.sweep.state"] in ("complete", "pruned")
        assert run.info.status == "FINISHED" and run.info.run_name.startswith("diffusion-trial-")
        assert "train.lr" in run.data.params  # the training logged into the trial's run
    best = yaml.safe_load((sweep_project / "sweeps/best_diffusion.yaml").read_text())
    p = study.best_params
    assert best["diffusion"]["net"] == {k: p[f"net.{k}"] for k in ("width", "depth", "heads")}
    assert best["diffusion"]["schedule"] == {"prediction": p["schedule.prediction"]}


def _wait_running(name: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(t.state == optuna.trial.TrialState.RUNNING for t in _study(name).trials):
                return
        except Exception:  # noqa: BLE001 - the database or the study is not created yet
            pass
        time.sleep(0.5)
    raise AssertionError(f"no trial of {name} started within {timeout} s")


@pytest.mark.slow
def test_sweep_killed_mid_trial_resumes(sweep_project: Path) -> None:
    write_params(
        sweep_project,
        {
            "overfit": {
                "fixed": {
                    "max_steps": 2000,
                    "check_every": 10,
                    "init": "seed",
                    "points_per_step": 128,
                    "splits": ["train"],
                }
            }
        },
    )
    proc = sweep_process(sweep_project, "overfit")
    _wait_running("overfit")
    time.sleep(2.5)  # a heartbeat is on record, the trial is mid-fit
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = [t for t in _study("overfit").trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(killed) == 1

    write_params(sweep_project)  # back to the short budget for the rest
    _cli("sweep", "overfit")
    trials = _study("overfit").trials
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 3
    stale = trials[killed[0].number]
    assert stale.state == optuna.trial.TrialState.FAIL
    run = MlflowClient(tracking_uri()).get_run(stale.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["shd.sweep.state"] == "failed"


@pytest.mark.slow
def test_two_processes_share_one_study(sweep_project: Path) -> None:
    procs = [sweep_process(sweep_project, "overfit", "--trials", "5", "--worker", str(i)) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trials = _study("overfit").trials
    assert sum(t.state in FINISHED for t in trials) == 5
    assert all(t.user_attrs.get("surplus") for t in trials if t.state == optuna.trial.TrialState.FAIL)
    parents, runs = _runs("overfit")
    assert len(parents) == 1
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parents[0].info.run_id}
    assert sorted(int(r.data.tags["shd.sweep.trial"]) for r in runs) == [
        t.number for t in trials if t.user_attrs.get("mlflow_run_id")
    ]
