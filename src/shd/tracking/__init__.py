"""MLflow tracking and registry (where the store lives: `shd.mlflow_store`, re-exported here)."""

from shd.mlflow_store import artifact_root, ensure_experiment, tracking_uri
from shd.tracking.runs import flatten_params, log_stage_run, numeric_metrics

__all__ = [
    "artifact_root",
    "ensure_experiment",
    "flatten_params",
    "log_stage_run",
    "numeric_metrics",
    "tracking_uri",
]
