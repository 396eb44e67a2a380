"""The model card carried by a registered pyfunc (card.json): what the model is, what it was trained and
scored on, how well, where it came from; and `shd info`'s view of a version. Sampling defaults come from
EvaluateConfig, so the card never drifts from what `evaluate` used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shd.diffusion.export import read_config
from shd.errors import InputError
from shd.eval.config import EvaluateConfig
from shd.mlflow_store import client
from shd.shards import fingerprint
from shd.tracking.model_ref import registry_errors

CARD_FORMAT = "shd-model-card/1"
# what makes two evaluations comparable besides the test split
PROTOCOL_KEYS = (
    "resolution",
    "level",
    "n_points",
    "generate_factor",
    "seed",
    "reference_split",
    "reference_points",
)


def lineage(root: str | Path = ".") -> dict[str, Any]:
    """Versions of what the model came from: the DVC hashes of its inputs (dvc.lock) and the git commit."""
    import subprocess

    from shd.config import dvc_lock_entries

    root = Path(root)
    dvc = {path: md5 for _, _, path, md5 in dvc_lock_entries(root) if path.startswith(("data/", "models/"))}
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=root,
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"dvc": dvc, "git_commit": commit}


def build_card(
    model_dir: str | Path,
    report: dict[str, Any],
    test_ids: list[str],
    part_names: dict[str, list[str]],
    params: dict[str, Any],
    lineage: dict[str, Any],
) -> dict[str, Any]:
    """The model card carried by the pyfunc: what it is, what it was trained and scored on, how well."""
    config = read_config(model_dir)
    protocol = report.get("protocol") or {}
    evaluation = {
        "category": report.get("category"),
        "generator": report.get("generator"),
        "test_split_fingerprint": fingerprint(report.get("category"), sorted(test_ids)),
        "protocol_fingerprint": fingerprint(
            {k: protocol.get(k) for k in PROTOCOL_KEYS}, report.get("normalization")
        ),
        "n_reference": report.get("n_reference"),
        "protocol": protocol,
    }
    metrics = {k: report.get(k) for k in ("nna", "mmd", "cov", "n_generated", "n_evaluated", "n_empty")}
    metrics["yardsticks"] = {
        k: {m: (v or {}).get(m) for m in ("nna", "mmd", "cov")}
        for k, v in (report.get("yardsticks") or {}).items()
        if v
    }
    evaluate_params = params.get("evaluate") or {}
    defaults = EvaluateConfig()
    return {
        "format": CARD_FORMAT,
        "categories": config["categories"],
        "part_names": {c: part_names.get(c) for c in config["categories"]},
        "data": {
            "data_fingerprint": config.get("data_fingerprint"),
            "n_train": config.get("summary", {}).get("n_train"),
            "dvc": dict(lineage.get("dvc") or {}),
        },
        "params": {k: params.get(k) for k in ("sample", "overfit", "diffusion", "evaluate") if k in params},
        "metrics": metrics,
        "evaluation": evaluation,
        "lineage": {
            "train_run_id": config.get("summary", {}).get("run_id"),
            **{k: v for k, v in lineage.items() if k != "dvc"},
        },
        "sampling": {
            "resolution": int(evaluate_params.get("resolution", defaults.resolution)),
            "level": float(evaluate_params.get("level", defaults.level)),
        },
    }


def model_card(ref: str) -> dict[str, Any]:
    """What `shd info` prints: the registry's view of a version (aliases, tags, run) and the card it
    carries; for a local folder or checkpoint, what its config records."""
    import torch

    from shd.tracking.model_ref import resolve_model_folder, resolve_registry_version

    if ref.endswith(".ckpt"):
        if not Path(ref).is_file():
            raise InputError(ref, "no such checkpoint file")
        ckpt = torch.load(ref, map_location="cpu", weights_only=True)
        hp = ckpt.get("hyper_parameters", {})
        return {
            "model": ref,
            "categories": hp.get("categories"),
            "epoch": ckpt.get("epoch"),
            "global_step": ckpt.get("global_step"),
            "params": {k: hp.get(k) for k in ("net", "schedule", "train", "field", "normalization")},
        }
    folder = resolve_model_folder(ref)
    card_file = folder.parent / "card.json"
    if card_file.exists():
        card = json.loads(card_file.read_text(encoding="utf-8"))
    else:
        config = read_config(folder)
        summary = config.get("summary", {})
        card = {
            "categories": config.get("categories"),
            "data": {"data_fingerprint": config.get("data_fingerprint")},
            "params": {k: config.get(k) for k in ("net", "schedule", "train", "field", "normalization")},
            "metrics": {k: v for k, v in summary.items() if k not in ("run_id", "experiment_id")},
            "lineage": {"train_run_id": summary.get("run_id")},
        }
    out: dict[str, Any] = {"model": ref}
    if ref.startswith("models:/"):
        name, version = resolve_registry_version(ref)
        with registry_errors(ref):
            mv = client().get_model_version(name, version)
            aliases = {a: v for a, v in client().get_registered_model(name).aliases.items()}
        out["registry"] = {
            "name": name,
            "version": version,
            "aliases": sorted(a for a, v in aliases.items() if str(v) == str(version)),
            "run_id": mv.run_id,
            "source": mv.source,
            "tags": dict(mv.tags),
        }
    return {**out, **card}
