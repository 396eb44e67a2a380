"""Where MLflow keeps runs: `sqlite:///mlruns/mlflow.db` with artifacts under `mlruns/artifacts`.

MLflow >= 3.13 refuses the plain `./mlruns` file store, so the default is SQLite; `MLFLOW_TRACKING_URI`
overrides it unchanged (a team server with Postgres + object storage works the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

DEFAULT_DIR = Path("mlruns")
# URIs this module chose itself; `mlflow.set_tracking_uri` copies them into MLFLOW_TRACKING_URI, which
# must then not be mistaken for a user's override.
_CHOSEN: set[str] = set()


def tracking_uri(root: str | Path | None = None) -> str:
    """The tracking URI: $MLFLOW_TRACKING_URI, else SQLite under `root` (default ./mlruns)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env and env not in _CHOSEN:
        return env
    folder = Path(root) if root is not None else DEFAULT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(folder / 'mlflow.db').resolve()}"
    _CHOSEN.add(uri)
    return uri


def artifact_root(root: str | Path | None = None) -> str | None:
    """Artifact location for new experiments of a local SQLite store (None: a server decides).

    Judged from the URI, not from the environment: `mlflow.set_tracking_uri` writes the variable.
    """
    if not tracking_uri(root).startswith("sqlite:"):
        return None
    folder = (Path(root) if root is not None else DEFAULT_DIR) / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


def ensure_experiment(name: str, root: str | Path | None = None) -> str:
    """Create the experiment if needed (artifacts under mlruns/artifacts); return its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(root))
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_root(root))


def client():
    """An MlflowClient of this store for tracking and the registry alike, whatever the global URIs say
    (MLflow's artifact download of `models:/` URIs would otherwise read the default registry)."""
    from mlflow import MlflowClient

    uri = tracking_uri()
    return MlflowClient(uri, registry_uri=uri)
