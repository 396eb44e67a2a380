"""Where MLflow keeps runs: `sqlite:///mlruns/mlflow.db` with artifacts under `mlruns/artifacts`.

MLflow >= 3.13 refuses the plain `./mlruns` file store, so the default is SQLite; `MLFLOW_TRACKING_URI`
overrides it unchanged (a team server with Postgres + object storage works the same way).

A store that cannot be reached (server down, SQLite locked past its busy timeout) is an `InputError`
naming the URI after bounded retries, raised before or after a stage's local results are written,
never instead of them: stages write their files first and log last.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from shd.atomic import file_lock
from shd.errors import InputError

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow's HTTP defaults retry 7 times with 2x backoff and a 120 s timeout (minutes before an error on
# an unreachable server); a stage gives up after ~15 s. The environment still overrides both.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

DEFAULT_DIR = Path("mlruns")  # relative: under the project root (an absolute path is taken as is)
PROJECT_MARKERS = ("dvc.yaml", "params.yaml")
# URIs this module chose itself; `mlflow.set_tracking_uri` copies them into MLFLOW_TRACKING_URI, which
# must then not be mistaken for a user's override.
_CHOSEN: set[str] = set()


def project_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working folder) holding dvc.yaml or
    params.yaml; outside a project an InputError, so that no command creates a stray ./mlruns."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).is_file() for marker in PROJECT_MARKERS):
            return folder
    raise InputError(
        here,
        f"not inside an shd project (no {' or '.join(PROJECT_MARKERS)} here or above), so there is "
        "no local MLflow store; run from the project or set MLFLOW_TRACKING_URI",
    )


def default_dir() -> Path:
    """The local store's folder: DEFAULT_DIR under the project root."""
    return DEFAULT_DIR if DEFAULT_DIR.is_absolute() else project_root() / DEFAULT_DIR


def tracking_uri(root: str | Path | None = None) -> str:
    """The tracking URI: $MLFLOW_TRACKING_URI, else SQLite under `root` (default: the project's
    mlruns/)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env and env not in _CHOSEN:
        return env
    folder = Path(root) if root is not None else default_dir()
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(folder / 'mlflow.db').resolve()}"
    _CHOSEN.add(uri)
    return uri


def store_lock(name: str) -> AbstractContextManager[None]:
    """Serializes a read-compare-write on the store (the registry's champion alias) among the processes
    of this machine: a lock file beside a local SQLite store, else under ./mlruns. A tracking server
    offers no compare-and-set, so processes on other machines are not covered."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
    else:  # a server: the project's mlruns/, or outside a project the user's cache
        try:
            folder = default_dir()
        except InputError:
            folder = Path.home() / ".cache" / "shd"
    return file_lock(folder / f".{name}.lock")


def artifact_root(root: str | Path | None = None) -> str | None:
    """Artifact location for new experiments of a local SQLite store (None: a server decides).

    Judged from the URI, not from the environment: `mlflow.set_tracking_uri` writes the variable.
    """
    if not tracking_uri(root).startswith("sqlite:"):
        return None
    folder = (Path(root) if root is not None else default_dir()) / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


@contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """MLflow/SQLAlchemy/HTTP failures of the store at `uri` -> one InputError naming it and the cause."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as exc:  # requests' connection errors are OSErrors
        text = str(exc)
        errno = re.search(r"\[Errno -?\d+\][^'\"()]*", text)  # the socket error under urllib3's wrapping
        cause = (
            (
                f"cannot connect: {errno.group(0).strip()}, after "
                f"{os.environ['MLFLOW_HTTP_REQUEST_MAX_RETRIES']} retries"
            )
            if errno
            else (text.splitlines() or [type(exc).__name__])[0][:300]
        )
        raise InputError(
            f"MLflow store {uri}",
            f"not usable ({cause}); start the tracking server, free the "
            "SQLite file or set MLFLOW_TRACKING_URI; files the stage wrote are kept",
        ) from None


def ensure_experiment(name: str, root: str | Path | None = None) -> str:
    """Create the experiment if needed (artifacts under mlruns/artifacts); return its id."""
    import mlflow

    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    with store_errors(uri):
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
