"""The model registry's store operations: log a trained model as a pyfunc version, compare it with the
`champion` alias (the policy: shd.tracking.promotion), move the alias only when the new version is
better, and record why. The card it carries: shd.tracking.card.

All-or-nothing: the version is created with its metric tags in one call, the decision tags follow,
and the alias moves last; a failure before the alias deletes the half-made version. The
read-compare-write runs under `store_lock("registry")`: a Postgres advisory lock when the store (or
SHD_LOCK_URI) is Postgres, so registrations from several machines are serialized too.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from shd.diffusion.export import CONFIG_FILE, NORM_FILE, WEIGHTS_FILE
from shd.mlflow_store import client, ensure_experiment, store_lock
from shd.shards import fingerprint
from shd.tracking.model_ref import registry_errors
from shd.tracking.promotion import Candidate, Decision, Score, decide
from shd.tracking.runs import flatten_params, numeric_metrics

CHAMPION = "champion"
EXPERIMENT = "shd-register"
CODE_FILE = Path(__file__).with_name("pyfunc_code.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/shd, carried as the model's code


def champion_of(name: str) -> Candidate | None:
    """The version the champion alias points at (None: no alias yet, or no such model)."""
    from mlflow.exceptions import MlflowException

    c = client()
    try:
        mv = c.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return Candidate.from_tags(mv.version, mv.tags)


def model_fingerprint(model_dir: str | Path, score: Score, test_split: str, protocol: str) -> str:
    """The model files and what they were scored as: a rerun with the same inputs reuses its version."""
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, NORM_FILE, CONFIG_FILE):
        digest.update((Path(model_dir) / name).read_bytes())
    return fingerprint(digest.hexdigest(), score.tags(), test_split, protocol)


def _ensure_registered_model(name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client().create_registered_model(
            name, tags={"project": "shd"}, description="shd weight-space diffusion model (pyfunc)"
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _existing(name: str, fp: str) -> Any | None:
    versions = client().search_model_versions(f"name = '{name}'")
    return next((v for v in versions if v.tags.get("model_fingerprint") == fp), None)


def log_version(name: str, model_dir: str | Path, card: dict[str, Any], tags: dict[str, str]) -> Any:
    """Log the pyfunc (artifacts: the model folder and the card) in one run and register it as a new
    version carrying `tags`. Returns the ModelVersion."""
    import mlflow
    import mlflow.pyfunc

    from shd.tracking.pyfunc import pip_requirements, signature

    experiment_id = ensure_experiment(EXPERIMENT)
    with tempfile.TemporaryDirectory() as tmp:
        card_path = Path(tmp) / "card.json"
        card_path.write_text(json.dumps(card, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"register-{name}",
            tags={"stage": "register", "registered_model": name},
        ) as run:
            mlflow.log_params(flatten_params({"params": card.get("params", {}), "name": name}))
            mlflow.log_metrics(numeric_metrics(card.get("metrics", {})))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(CODE_FILE),
                artifacts={"model": str(Path(model_dir)), "card": str(card_path)},
                code_paths=[str(PACKAGE_DIR)],
                pip_requirements=pip_requirements(),
                signature=signature(),
            )
            _ensure_registered_model(name)
            return client().create_model_version(
                name,
                info.model_uri,
                run_id=run.info.run_id,
                tags=tags,
                model_id=info.model_id,
                description=f"{card.get('metrics', {})}"[:4000],
            )


def apply_decision(name: str, version: str, decision: Decision, champion: Candidate | None) -> None:
    """Decision tags on the version, then (last, one call) the alias when it is promoted."""
    c = client()
    for key, value in decision.tags(champion).items():
        c.set_model_version_tag(name, version, key, value)
    if decision.promote:
        c.set_registered_model_alias(name, CHAMPION, version)


def register(
    model_dir: str | Path, card: dict[str, Any], name: str, on_split_mismatch: str = "promote"
) -> dict[str, Any]:
    """Register the model as a new version of `name` (or find the same one already registered),
    compare it with the champion and move the alias when it wins. Returns the decision record."""
    score = Score.from_mapping(card["metrics"])
    evaluation = card["evaluation"]
    test_split, protocol = evaluation["test_split_fingerprint"], evaluation["protocol_fingerprint"]
    fp = model_fingerprint(model_dir, score, test_split, protocol)
    # one registration at a time: two at once could both read the old champion and both move the alias
    with registry_errors(f"models:/{name}"), store_lock("registry"):
        champion = champion_of(name)
        existing = _existing(name, fp)
        if existing is not None:
            version, created = existing.version, False
        else:
            tags = {
                **score.tags(),
                "test_split_fingerprint": test_split,
                "eval_protocol_fingerprint": protocol,
                "model_fingerprint": fp,
                "data_fingerprint": str(card["data"]["data_fingerprint"]),
                "decision": "pending",
            }
            version, created = log_version(name, model_dir, card, tags).version, True
        new = Candidate(version, score, test_split, protocol)
        if champion is not None and champion.version == version:
            decision = Decision(False, "kept", f"version {version} is already the champion")
        else:
            decision = decide(new, champion, on_split_mismatch)
        try:
            apply_decision(name, version, decision, champion)
        except BaseException:
            if created:  # never leave a version without its decision (nor an alias on it)
                client().delete_model_version(name, version)
            raise
    return {
        "name": name,
        "version": version,
        "new_version": created,
        "decision": decision.outcome,
        "promoted": decision.promote,
        "reason": decision.reason,
        "champion_before": champion.version if champion else None,
        "champion": version if decision.promote else (champion.version if champion else None),
        "metrics": {"nna": score.nna, "mmd": score.mmd, "cov": score.cov},
        "test_split_fingerprint": test_split,
        "model_uri": f"models:/{name}/{version}",
    }


def promote(name: str, version: str, force: bool = False, on_split_mismatch: str = "promote") -> Decision:
    """`shd promote`: the same comparison for an already registered version; `force` moves the alias
    past a worse score (never past missing or NaN metrics)."""
    with registry_errors(f"models:/{name}/{version}"), store_lock("registry"):
        from shd.tracking.model_ref import resolve_registry_version

        name, version = resolve_registry_version(f"models:/{name}/{version}")
        mv = client().get_model_version(name, version)
        new, champion = Candidate.from_tags(version, mv.tags), champion_of(name)
        if champion is not None and champion.version == version:
            return Decision(False, "kept", f"version {version} is already the champion")
        decision = decide(new, champion, on_split_mismatch)
        if force and not decision.promote and new.score.usable:
            decision = Decision(True, "promoted", f"forced by `shd promote --force` ({decision.reason})")
        apply_decision(name, version, decision, champion)
    return decision
