"""MLflow for a study, by hand: one parent run per study, one nested run per trial.

Optuna's MLflowCallback is deprecated and logs one flat run per trial; here the parent run id is
kept in the study's user attributes (per tracking URI), so every process and every rerun of the
study logs under the same parent, and a trial's run id is kept in the trial's user attributes, so a
trial failed for a lost heartbeat (killed worker) still gets its MLflow run closed as failed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import optuna
from mlflow import MlflowClient
from mlflow.entities import Param

from shd.tracking import ensure_experiment, flatten_params, numeric_metrics, tracking_uri

RUN_ATTR = "mlflow_run_id"
# A pruned trial ended as designed (the pruner stopped a poor one): FINISHED, told apart by its
# `shd.sweep.state` tag. MLflow's KILLED means an interrupted run.
STATUS = {"complete": "FINISHED", "pruned": "FINISHED", "failed": "FAILED"}
PARENT_WAIT_S = 30.0


def trial_run_name(trial: optuna.Trial) -> str:
    """`<study>-trial-<n>`: the trials of the overfit and the diffusion study differ in the run list."""
    return f"{trial.study.study_name}-trial-{trial.number}"


def parent_key() -> str:
    return f"mlflow_parent_run:{tracking_uri()}"


def parent_run(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    experiment: str,
    created: bool,
    params: Mapping[str, Any],
) -> str:
    """The study's parent run id: made by the process that created the study, found by the others
    (which wait a little for it: the creator records it right after creating the study)."""
    client = MlflowClient(tracking_uri())
    key = parent_key()
    deadline = time.monotonic() + (0 if created else PARENT_WAIT_S)
    while (run_id := study.user_attrs.get(key)) is None and time.monotonic() < deadline:
        time.sleep(0.5)  # the creating process is about to record it
        study = optuna.load_study(study_name=study.study_name, storage=storage)
    if run_id is not None:
        client.update_run(run_id, status="RUNNING")
        return run_id
    experiment_id = ensure_experiment(experiment)
    run = client.create_run(
        experiment_id,
        run_name=f"study-{study.study_name}",
        tags={"shd.sweep.study": study.study_name, "shd.sweep.role": "study"},
    )
    _log_params(client, run.info.run_id, flatten_params(params))
    study.set_user_attr(key, run.info.run_id)
    return run.info.run_id


def _log_params(client: MlflowClient, run_id: str, params: Mapping[str, str]) -> None:
    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=items[i : i + 100])


def start_trial_run(
    parent_id: str, trial: optuna.Trial, values: Mapping[str, Any], config: Mapping[str, Any]
) -> str:
    """A nested run for the trial: its searched values (`trial.*`) and its full section (`config.*`)."""
    client = MlflowClient(tracking_uri())
    parent = client.get_run(parent_id)
    run = client.create_run(
        parent.info.experiment_id,
        run_name=trial_run_name(trial),
        tags={
            "mlflow.parentRunId": parent_id,
            "shd.sweep.study": trial.study.study_name,
            "shd.sweep.trial": str(trial.number),
            "shd.sweep.role": "trial",
        },
    )
    params = {**flatten_params({"trial": dict(values)}), **flatten_params({"config": dict(config)})}
    _log_params(client, run.info.run_id, params)
    trial.set_user_attr(RUN_ATTR, run.info.run_id)
    return run.info.run_id


def end_trial_run(
    run_id: str, state: str, metrics: Mapping[str, Any] | None = None, error: str | None = None
) -> None:
    """Record the trial's outcome: metrics, `state` tag (complete / pruned / failed) and run status."""
    client = MlflowClient(tracking_uri())
    for key, value in numeric_metrics(metrics or {}).items():
        client.log_metric(run_id, key, value)
    client.set_tag(run_id, "shd.sweep.state", state)
    if error:
        client.set_tag(run_id, "shd.sweep.error", error[:5000])
    client.set_terminated(run_id, STATUS[state])


def close_stale_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Heartbeat-stale callback: the trial's worker died; its run (if any) ends as failed."""
    run_id = trial.user_attrs.get(RUN_ATTR)
    if run_id:
        end_trial_run(run_id, "failed", error="worker lost (no heartbeat within the grace period)")


def finish_parent(parent_id: str, study: optuna.Study, artifacts: list[tuple[str, str]]) -> None:
    """Study-level metrics and artifacts (plots, best params) on the parent run; mark it finished."""
    client = MlflowClient(tracking_uri())
    trials = study.get_trials(deepcopy=False)
    counts = {
        f"n_{s.name.lower()}": sum(t.state == s for t in trials)
        for s in (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL,
        )
    }
    metrics = dict(counts)
    if counts["n_complete"]:
        metrics["best_value"] = study.best_value
        client.set_tag(parent_id, "shd.sweep.best_trial", str(study.best_trial.number))
    for key, value in numeric_metrics(metrics).items():
        client.log_metric(parent_id, key, value)
    for path, folder in artifacts:
        client.log_artifact(parent_id, path, folder)
    client.set_terminated(parent_id, "FINISHED")
