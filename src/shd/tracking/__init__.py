"""MLflow tracking and registry: the one place that decides where runs and models are stored."""

from shd.tracking.runs import flatten_params, log_stage_run, numeric_metrics
from shd.tracking.store import artifact_root, ensure_experiment, tracking_uri

__all__ = ["artifact_root", "ensure_experiment", "flatten_params", "log_stage_run", "numeric_metrics",
           "tracking_uri"]
