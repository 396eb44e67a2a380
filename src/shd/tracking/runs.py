"""Logging a finished stage to MLflow: flattened params, numeric metrics, artifacts, in one run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from shd.mlflow_store import ensure_experiment, store_errors, tracking_uri

MAX_PARAM_LEN = 6000  # MLflow's limit on a param value


def leaves(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted name, value) of every non-mapping value of a nested mapping."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from leaves(value, f"{name}.")
        else:
            yield name, value


def flatten_params(values: Mapping[str, Any]) -> dict[str, str]:
    """Nested config -> {'a.b.c': 'value'} as MLflow params want them."""
    return {name: str(value)[:MAX_PARAM_LEN] for name, value in leaves(values)}


def numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a (nested) metrics dict, flattened; everything else is skipped."""
    return {
        name: float(value)
        for name, value in leaves(values)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def log_stage_run(
    experiment: str,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    artifacts: Iterable[str | Path] = (),
    tags: Mapping[str, str] | None = None,
) -> str:
    """One MLflow run for a finished stage; returns its run id."""
    import mlflow

    experiment_id = ensure_experiment(experiment)
    with (
        store_errors(tracking_uri()),
        mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})) as run,
    ):
        mlflow.log_params(flatten_params(params))
        mlflow.log_metrics(numeric_metrics(metrics))
        for path in artifacts:
            path = Path(path)
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.exists():
                mlflow.log_artifact(str(path))
    return run.info.run_id
