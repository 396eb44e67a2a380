"""MLflow tracking and registry: the one place that decides where runs and models are stored."""

from shd.tracking.store import artifact_root, ensure_experiment, tracking_uri

__all__ = ["artifact_root", "ensure_experiment", "tracking_uri"]
