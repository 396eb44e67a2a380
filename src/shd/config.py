"""Reading `params.yaml`: every knob of the pipeline lives there, one section per stage.

Sections map onto config dataclasses; an unknown or mistyped key is an InputError naming
`params.yaml:<section>.<key>` and the keys that are expected.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from shd.errors import InputError

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


def read_yaml(path: str | Path, missing: str) -> Any:
    """A YAML document; a missing file or bad YAML is an InputError naming the file (`missing`: why)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, missing)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({exc})") from None


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    data = read_yaml(path, "missing; run from the repository root (where params.yaml lives)")
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping of sections at the top level")
    return data


def section_config(params: dict[str, Any], section: str, cls: type[T], where: str = PARAMS_FILE) -> T:
    """Build `cls` from `params[section]`, checking keys; lists become tuples where the field says so."""
    raw = params.get(section)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"{where}:{section}", "expected a mapping of keys")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise InputError(
            f"{where}:{section}.{unknown[0]}", f"unknown key; expected some of: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if typing.get_origin(hints[key]) is tuple and isinstance(value, list):
            value = tuple(value)
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise InputError(f"{where}:{section}", str(exc)) from None


def dvc_lock_entries(root: str | Path = ".") -> list[tuple[str, str, str, str]]:
    """(stage, "deps" | "outs", path, md5) of every hashed entry of the project's dvc.lock, in the file's
    order (none without a lock file): what DVC says each stage's inputs and outputs were."""
    lock = Path(root) / "dvc.lock"
    if not lock.exists():
        return []
    stages = (read_yaml(lock, "missing") or {}).get("stages", {})
    return [
        (name, kind, str(item["path"]), str(item["md5"]))
        for name, stage in stages.items()
        for kind in ("deps", "outs")
        for item in stage.get(kind, [])
        if "md5" in item and "path" in item
    ]
