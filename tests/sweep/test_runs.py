"""The MLflow runs of a study: names that tell the studies apart, and a pruned trial that is not KILLED."""

from __future__ import annotations

from collections.abc import Iterator

import optuna
import pytest
from mlflow import MlflowClient

from shd.sweep.runs import end_trial_run, parent_run, start_trial_run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowClient]:
    """One SQLite store for the module (creating one costs seconds of schema migrations)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        yield MlflowClient(uri)


def _trial_run(kind: str) -> tuple[optuna.Trial, str]:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name=kind, storage=storage)
    parent = parent_run(study, storage, "sweep", created=True, params={"kind": kind})
    trial = study.ask()
    return trial, start_trial_run(parent, trial, {"lr": 0.01}, {"lr": 0.01})


def test_trial_runs_of_two_studies_have_different_names(store):
    names = {store.get_run(_trial_run(kind)[1]).info.run_name for kind in ("overfit", "diffusion")}
    assert names == {"overfit-trial-0", "diffusion-trial-0"}


@pytest.mark.parametrize(
    ("state", "status"), [("pruned", "FINISHED"), ("complete", "FINISHED"), ("failed", "FAILED")]
)
def test_trial_run_status_follows_its_state(store, state, status):
    _, run_id = _trial_run(f"diffusion-{state}")
    end_trial_run(run_id, state, {"objective": 0.5})
    run = store.get_run(run_id)
    assert run.info.status == status  # a pruned trial ended as designed: never KILLED
    assert run.data.tags["shd.sweep.state"] == state
