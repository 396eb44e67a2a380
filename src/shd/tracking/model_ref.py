"""One place that turns a model reference given by a user into a sampler.

A reference is one of
- an exported model folder (what the `train` stage writes to `models/diffusion/model`, or its parent);
- a Lightning checkpoint (`*.ckpt`, loaded with `weights_only=True`);
- `models:/<name>@<alias>` or `models:/<name>/<version>` (the registry);
- `runs:/<run_id>/<path>` (a logged pyfunc model, or the exported folder the train run logged), or a
  bare run id for `runs:/<run_id>/model`.

Registry and run URIs are downloaded once into a local cache ($SHD_MODEL_CACHE, default
~/.cache/shd/models), keyed by the store and the immutable thing they name, and resolve to the
exported model folder inside: safetensors + JSON, nothing unpickled.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from shd.devices import resolve_device
from shd.diffusion.api import load_checkpoint, load_model
from shd.diffusion.export import CONFIG_FILE
from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError
from shd.mlflow_store import client, tracking_uri
from shd.shards import fingerprint

CACHE_ENV = "SHD_MODEL_CACHE"
RUN_ID = re.compile(r"[0-9a-f]{32}")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # ours (rich) is shown instead


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "shd" / "models"))


@contextlib.contextmanager
def registry_errors(ref: str) -> Iterator[None]:
    """MLflow's failures as InputErrors that say what was wrong: unknown model, alias, run, server."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        text = str(exc)
        if _unreachable(text):
            raise InputError(
                tracking_uri(),
                "cannot reach the MLflow tracking server (is it running? "
                "MLFLOW_TRACKING_URI selects another store)",
            ) from None
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in text.lower():
            raise InputError(ref, f"not found in {tracking_uri()}: {text.splitlines()[0]}") from None
        raise InputError(ref, f"MLflow refused it: {text.splitlines()[0]}") from None
    except OSError as exc:  # requests' ConnectionError is an OSError
        if _unreachable(str(exc)):
            raise InputError(tracking_uri(), "cannot reach the MLflow tracking server") from None
        raise


def _unreachable(text: str) -> bool:
    return any(
        s in text
        for s in (
            "Max retries exceeded",
            "Connection refused",
            "Failed to establish",
            "ConnectionError",
            "timed out",
        )
    )


def _exported_folder(root: Path, ref: str) -> Path:
    """The exported model folder in a downloaded artifact tree (pyfunc or plain export)."""
    for candidate in (root, root / "model", root / "artifacts" / "model"):
        if (candidate / CONFIG_FILE).exists():
            return candidate
    found = sorted(root.rglob(CONFIG_FILE))
    if len(found) == 1:
        return found[0].parent
    raise InputError(ref, "holds no exported shd diffusion model (no config.json in its artifacts)")


def _download(artifact_uri: str, key: str, ref: str) -> Path:
    """Download an artifact tree once into the cache (atomically: a rename publishes it)."""
    import mlflow.artifacts

    target = cache_root() / key
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            with registry_errors(ref):
                mlflow.artifacts.download_artifacts(
                    artifact_uri=artifact_uri, dst_path=str(tmp), tracking_uri=tracking_uri()
                )
            _exported_folder(tmp, ref)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _exported_folder(target, ref)


def resolve_registry_version(ref: str) -> tuple[str, str]:
    """`models:/name@alias` or `models:/name/version` -> (name, version) as the registry knows them."""
    body = ref[len("models:/") :]
    c = client()
    with registry_errors(ref):
        if "@" in body:
            name, alias = body.split("@", 1)
            _registered(c, name, ref)
            try:
                return name, c.get_model_version_by_alias(name, alias).version
            except Exception as exc:  # MlflowException: alias not set
                if _unreachable(str(exc)):
                    raise
                raise InputError(
                    ref, f"model '{name}' has no alias '{alias}' (set by the register stage or `shd promote`)"
                ) from None
        name, _, version = body.partition("/")
        if not version.isdigit():
            raise InputError(ref, "expected models:/<name>@<alias> or models:/<name>/<version>")
        _registered(c, name, ref)
        return name, c.get_model_version(name, version).version


def _registered(client, name: str, ref: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        names = sorted(m.name for m in client.search_registered_models())
        raise InputError(
            ref,
            f"no registered model '{name}' in {tracking_uri()} (registered: {', '.join(names) or 'none'})",
        ) from None


def resolve_model_folder(ref: str) -> Path:
    """The local exported-model folder a reference names (downloading registry/run models once)."""
    if ref.startswith("models:/"):
        name, version = resolve_registry_version(ref)
        with registry_errors(ref):  # where the version's files are (not the global registry URI)
            c = client()
            mv = c.get_model_version(name, version)
            location = c.get_model_version_download_uri(name, version)
        # a wiped and rebuilt store reuses version numbers: the logged model's id and time tell them apart
        key = f"registry-{fingerprint(tracking_uri(), name, version, mv.source, mv.creation_timestamp)}"
        return _download(location, key, ref)
    if RUN_ID.fullmatch(ref) and not Path(ref).exists():
        ref = f"runs:/{ref}/model"  # a bare run id: the model that run logged (train or register)
    if ref.startswith("runs:/"):
        run_id, _, path = ref[len("runs:/") :].partition("/")
        if not run_id:
            raise InputError(ref, "expected runs:/<run_id>/<artifact path>")
        return _download(ref, f"run-{fingerprint(tracking_uri(), run_id, path)}", ref)
    path = Path(ref)
    if path.is_dir():
        return _exported_folder(path, ref) if not (path / CONFIG_FILE).exists() else path
    raise InputError(
        ref,
        "no such model: expected an exported model folder (e.g. models/diffusion/model), "
        "a .ckpt, models:/<name>@<alias>, models:/<name>/<version> or runs:/<id>/<path>",
    )


def load_sampler(ref: str, device: torch.device | str = "auto") -> WeightSampler:
    """Load the model a reference names on `device` ('auto' = CUDA when present)."""
    dev = device if isinstance(device, torch.device) else resolve_device(device, "device")
    if ref.endswith(".ckpt"):
        if not Path(ref).is_file():
            raise InputError(ref, "no such checkpoint file")
        return load_checkpoint(ref, device=dev)
    return load_model(resolve_model_folder(ref), device=dev)
