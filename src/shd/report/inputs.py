"""What a report is built from: an evaluation's files, found in a project folder or an MLflow run.

The evaluate stage keeps everything the page shows (shd.eval.config.EvalPaths): the metrics of record,
the generated weights it scored and, per sample, its nearest reference and training shape. Nothing is
sampled or scored again here; the report only meshes weights coarsely for display.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shd import paths
from shd.atomic import read_json_document
from shd.config import dvc_lock_entries, read_yaml
from shd.errors import InputError
from shd.eval.config import GENERATED_KEY, SAMPLES_FORMAT, EvalPaths
from shd.shards import read_shard

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MODEL_DIR = paths.MODEL
LOCK_FILE = "dvc.lock"
PARAMS_TITLE = "params (params.yaml)"
EVALUATE_STAGE = "evaluate"


@dataclass
class EvalOutputs:
    """One finished evaluation: metrics, per-sample records, generated weights, the weight set used."""

    metrics: dict[str, Any]
    samples: dict[str, Any]
    generated: torch.Tensor  # (N, D) in the weight set's layout
    weights: Path  # the fitted weight set (layout, field, training and reference shapes)
    project: Path
    run_id: str | None = None
    versions: dict[str, dict[str, str]] = field(default_factory=dict)


def _read_json(path: Path, hint: str) -> dict[str, Any]:
    if not path.exists():
        raise InputError(path, f"missing; {hint}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"is not valid JSON ({exc})") from None


def load_outputs(
    metrics: Path, samples: Path, generated: Path, project: Path, run_id: str | None = None
) -> EvalOutputs:
    """Read the three files of an evaluation; the weight set is the one its samples name, under `project`."""
    hint = "run the evaluate stage first (dvc repro evaluate)"
    report = _read_json(metrics, hint)
    records = read_json_document(samples, hint, SAMPLES_FORMAT)
    if not generated.exists():
        raise InputError(generated, f"missing; {hint}")
    tensors, _ = read_shard(generated, [GENERATED_KEY])
    flat = torch.from_numpy(tensors[GENERATED_KEY])
    if len(flat) != len(records["generated"]):
        raise InputError(samples, f"lists {len(records['generated'])} samples, {generated} holds {len(flat)}")
    weights = Path(records["weights"])
    weights = weights if weights.is_absolute() else project / weights
    if not (weights / "manifest.json").exists():
        raise InputError(
            weights,
            "the evaluated weight set is not here (expected its manifest.json); pass "
            "the project folder it was evaluated in",
        )
    return EvalOutputs(report, records, flat, weights, project, run_id, versions(project))


def from_project(root: str | Path) -> EvalOutputs:
    """The evaluation a DVC project folder holds (reports/eval.json and data/eval/)."""
    root = Path(root)
    paths = EvalPaths.under(root)
    return load_outputs(paths.metrics, paths.samples, paths.generated, root)


def from_mlflow_run(run_id: str, project: str | Path, dest: str | Path) -> EvalOutputs:
    """An evaluate run's logged files, downloaded to `dest`; its weight set is read from `project`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from shd.mlflow_store import tracking_uri

    project = Path(project)
    mlflow.set_tracking_uri(tracking_uri(project / "mlruns"))
    try:
        run = mlflow.MlflowClient().get_run(run_id)
        folder = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(dest)))
    except MlflowException as exc:
        raise InputError(
            f"MLflow run {run_id}", f"cannot be read from {mlflow.get_tracking_uri()} ({exc.message})"
        ) from None
    names = EvalPaths()
    outputs = load_outputs(
        folder / names.metrics.name,
        folder / names.samples.name,
        folder / names.generated.name,
        project,
        run_id,
    )
    outputs.versions.pop(PARAMS_TITLE, None)  # the run's own params, not today's params.yaml
    outputs.versions["params (MLflow run)"] = {
        k: v for k, v in sorted(run.data.params.items()) if k.startswith("evaluate.")
    }
    return outputs


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def versions(project: Path) -> dict[str, dict[str, str]]:
    """What the numbers were computed from, as far as the folder tells: DVC-tracked data and model
    hashes (dvc.lock, upstream stages: `dvc repro` locks each stage as it finishes), the exported
    model's fingerprints and file hash, and the evaluate/report params."""
    out: dict[str, dict[str, str]] = {}
    if (project / LOCK_FILE).exists():
        # the evaluate stage is rerunning while the report is built: its entry is the last run's
        out["data (dvc.lock)"] = {
            path: f"md5 {md5.removesuffix('.dir')} (stage {name})"
            for name, kind, path, md5 in dvc_lock_entries(project)
            if kind == "outs" and name != EVALUATE_STAGE
        }
    model = project / MODEL_DIR
    if (model / "config.json").exists():
        config = json.loads((model / "config.json").read_text())
        summary = config.get("summary") or {}
        info = {
            "training data fingerprint": str(config.get("data_fingerprint")),
            "training MLflow run": str(summary.get("run_id")),
            "net": json.dumps(config.get("net")),
            "epochs / steps": f"{summary.get('epochs')} / {summary.get('global_step')}",
        }
        if (model / "model.safetensors").exists():
            info["model.safetensors sha256"] = _file_hash(model / "model.safetensors")
        out[f"model ({MODEL_DIR})"] = info
    params = project / "params.yaml"
    if params.exists():
        values = read_yaml(params, "missing") or {}
        out[PARAMS_TITLE] = {
            f"{section}.{k}": str(v)
            for section in ("evaluate", "report")
            for k, v in (values.get(section) or {}).items()
        }
    return out
