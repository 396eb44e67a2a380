"""The model registry: log a trained model as a pyfunc version, compare it with the `champion` alias,
move the alias only when the new version is better, and record why.

Comparison (lower 1-NNA wins; ties: lower MMD, then higher COV) is only between versions evaluated on
the same test split with the same protocol (fingerprints in the version tags). A version whose 1-NNA,
MMD or COV is missing or NaN is never promoted. When the champion was scored on another split or
protocol its numbers do not compare: `on_split_mismatch` decides (`promote`: the new version, scored
on the current split, replaces it; `keep`: the champion stays until someone promotes by hand).

All-or-nothing: the version is created with its metric tags in one call, the decision tags follow,
and the alias moves last; a failure before the alias deletes the half-made version.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shd.diffusion.export import CONFIG_FILE, NORM_FILE, WEIGHTS_FILE, read_config
from shd.errors import InputError
from shd.mlflow_store import client, ensure_experiment, store_lock
from shd.shards import fingerprint
from shd.tracking.model_ref import registry_errors
from shd.tracking.runs import flatten_params, numeric_metrics

CHAMPION = "champion"
EXPERIMENT = "shd-register"
POLICIES = ("promote", "keep")
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
CODE_FILE = Path(__file__).with_name("pyfunc_code.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/shd, carried as the model's code


@dataclass(frozen=True)
class RegisterConfig:
    """params.yaml section `register`."""

    model_name: str | None = None  # None: shd-<category>[-<category>...]
    on_split_mismatch: str = "promote"  # champion scored on another test split/protocol: promote | keep

    def __post_init__(self) -> None:
        if self.on_split_mismatch not in POLICIES:
            raise InputError(
                "register.on_split_mismatch", f"expected one of {POLICIES}, got {self.on_split_mismatch!r}"
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


def model_name(categories: list[str], override: str | None = None) -> str:
    """`shd-<category>` (several categories: `shd-<cat1>-<cat2>`), unless params name one."""
    return override or "shd-" + "-".join(categories)


@dataclass(frozen=True)
class Score:
    """The evaluation numbers a decision reads; NaN where missing."""

    nna: float
    mmd: float
    cov: float

    @classmethod
    def from_mapping(cls, values: dict[str, Any], prefix: str = "") -> Score:
        def num(key: str) -> float:
            try:
                return float(values.get(prefix + key))
            except (TypeError, ValueError):
                return math.nan

        return cls(num("nna"), num("mmd"), num("cov"))

    @property
    def usable(self) -> bool:
        return all(math.isfinite(x) for x in (self.nna, self.mmd, self.cov))

    def key(self) -> tuple[float, float, float]:
        """Sort key: smaller is better (1-NNA, then MMD, then COV descending)."""
        return self.nna, self.mmd, -self.cov

    def tags(self) -> dict[str, str]:
        return {f"metric.{k}": repr(v) for k, v in (("nna", self.nna), ("mmd", self.mmd), ("cov", self.cov))}

    def __str__(self) -> str:
        return f"1-NNA {self.nna:.4g}, MMD {self.mmd:.4g}, COV {self.cov:.4g}"


@dataclass(frozen=True)
class Candidate:
    """A version as the comparison sees it: its score and where it was scored."""

    version: str | None
    score: Score
    test_split: str
    protocol: str

    @classmethod
    def from_tags(cls, version: str, tags: dict[str, str]) -> Candidate:
        return cls(
            version,
            Score.from_mapping(tags, "metric."),
            tags.get("test_split_fingerprint", ""),
            tags.get("eval_protocol_fingerprint", ""),
        )


@dataclass(frozen=True)
class Decision:
    promote: bool
    outcome: str  # promoted | kept | refused
    reason: str

    def tags(self, champion: Candidate | None) -> dict[str, str]:
        return {
            "decision": self.outcome,
            "decision_reason": self.reason[:5000],
            "compared_with": f"version {champion.version}" if champion else "none",
        }


def decide(new: Candidate, champion: Candidate | None, on_split_mismatch: str = "promote") -> Decision:
    """Should `new` take the champion alias? (Pure: the policy in one place, tested directly.)"""
    if on_split_mismatch not in POLICIES:
        raise InputError(
            "register.on_split_mismatch", f"expected one of {POLICIES}, got {on_split_mismatch!r}"
        )
    if not new.score.usable:
        return Decision(False, "refused", f"missing or NaN metrics ({new.score}): never promoted")
    if champion is None:
        return Decision(True, "promoted", f"no champion yet; {new.score}")
    if (new.test_split, new.protocol) != (champion.test_split, champion.protocol):
        what = "test split" if new.test_split != champion.test_split else "evaluation protocol"
        why = (
            f"champion v{champion.version} was scored on another {what}, its numbers do not compare; "
            f"policy on_split_mismatch={on_split_mismatch}"
        )
        return Decision(
            on_split_mismatch == "promote", "promoted" if on_split_mismatch == "promote" else "kept", why
        )
    if not champion.score.usable or new.score.key() < champion.score.key():
        return Decision(
            True, "promoted", f"{new.score} beats champion v{champion.version} ({champion.score})"
        )
    return Decision(
        False, "kept", f"{new.score} does not beat champion v{champion.version} ({champion.score})"
    )


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
    return {
        "format": CARD_FORMAT,
        "categories": config["categories"],
        "part_names": {c: part_names.get(c) for c in config["categories"]},
        "data": {
            "data_fingerprint": config.get("data_fingerprint"),
            "n_train": config.get("summary", {}).get("n_train"),
            "dvc": lineage.pop("dvc", {}),
        },
        "params": {k: params.get(k) for k in ("sample", "overfit", "diffusion", "evaluate") if k in params},
        "metrics": metrics,
        "evaluation": evaluation,
        "lineage": {"train_run_id": config.get("summary", {}).get("run_id"), **lineage},
        "sampling": {
            "resolution": int(evaluate_params.get("resolution", 64)),
            "level": float(evaluate_params.get("level", 1.3862943611198906)),
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
