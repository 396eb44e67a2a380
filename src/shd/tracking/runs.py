"""Logging a finished stage to MLflow: flattened params, numeric metrics, artifacts, in one run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shd.tracking.store import ensure_experiment

MAX_PARAM_LEN = 6000  # MLflow's limit on a param value


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {'a.b.c': 'value'} as MLflow params want them."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        else:
            out[name] = str(value)[:MAX_PARAM_LEN]
    return out


def numeric_metrics(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) metrics dict, flattened; everything else is skipped."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(numeric_metrics(value, f"{name}."))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float) and math.isfinite(value):
            out[name] = float(value)
    return out


def log_stage_run(experiment: str, run_name: str, params: Mapping[str, Any], metrics: Mapping[str, Any],
                  artifacts: Iterable[str | Path] = (), tags: Mapping[str, str] | None = None) -> str:
    """One MLflow run for a finished stage; returns its run id."""
    import mlflow

    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})) as run:
        mlflow.log_params(flatten_params(params))
        mlflow.log_metrics(numeric_metrics(metrics))
        for path in artifacts:
            path = Path(path)
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.exists():
                mlflow.log_artifact(str(path))
    return run.info.run_id
