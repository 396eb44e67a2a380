"""Best parameters as a params.yaml fragment (`sweeps/best_<kind>.yaml`) and merging it into params.yaml.

The fragment holds only the searched keys, in params.yaml shape, so `shd sweep apply` is a deep merge
and `dvc repro` reruns exactly the stages whose section changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shd.atomic import write_text
from shd.config import read_yaml
from shd.errors import InputError
from shd.sweep.yaml_edit import update_text
from shd.tracking.runs import leaves


def best_path(out_dir: str | Path, kind: str) -> Path:
    return Path(out_dir) / f"best_{kind}.yaml"


def write_best(
    path: str | Path,
    fragment: Mapping[str, Any],
    study: str,
    trial: int,
    value: float,
    metric: str,
    kind: str,
) -> None:
    """Write the fragment atomically, with where it came from as a comment header."""
    header = (
        f"# Best trial of the Optuna study {study!r}: trial {trial}, objective {value:.6g} "
        f"({metric}).\n"
        f"# Only the searched keys; `shd sweep apply {kind}` merges them into params.yaml.\n"
    )
    write_text(path, header + yaml.safe_dump(dict(fragment), sort_keys=False))


def read_best(path: str | Path) -> dict[str, Any]:
    doc = read_yaml(path, "missing; run the sweep first (shd sweep overfit | diffusion)")
    if not isinstance(doc, dict) or not doc or not all(isinstance(v, dict) for v in doc.values()):
        raise InputError(path, "expected params.yaml sections (e.g. `diffusion: {...}`)")
    return doc


def apply_best(params_path: str | Path, best: str | Path) -> dict[str, tuple[Any, Any]]:
    """Merge the best-params file into params.yaml in place (comments kept); returns
    {dotted key: (old, new)} of the values that changed (empty: already applied)."""
    params_path = Path(params_path)
    if not params_path.exists():
        raise InputError(params_path, "missing; run from the repository root (where params.yaml lives)")
    fragment = read_best(best)
    text = params_path.read_text(encoding="utf-8")
    before = yaml.safe_load(text) or {}
    missing = sorted(set(fragment) - set(before))
    if missing:
        raise InputError(f"{best}:{missing[0]}", f"no such section in {params_path}")
    new = update_text(text, fragment, str(params_path))
    old_leaves, new_leaves = dict(leaves(before)), dict(leaves(yaml.safe_load(new)))
    changed = {k: (old_leaves.get(k), v) for k, v in new_leaves.items() if old_leaves.get(k) != v}
    if changed:
        write_text(params_path, new)
    return changed
