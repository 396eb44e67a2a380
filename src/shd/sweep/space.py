"""Search spaces read from params.yaml, and the nested-dict plumbing that turns a trial into a section.

A space maps a dotted key of a params.yaml section (`train.lr`, `net.width`) to a distribution:
`{type: int, low, high, step?, log?}`, `{type: float, low, high, log?}`, or a list / `{type:
categorical, choices}`. Keeping the keys in params.yaml shape is what lets the best trial be written
back as a params.yaml fragment and merged unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from shd.errors import InputError

TYPES = ("int", "float", "categorical")


@dataclass(frozen=True)
class Dimension:
    name: str
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()


def parse_space(raw: Any, where: str) -> tuple[Dimension, ...]:
    """Validate a params.yaml space mapping; errors name `where.<key>` and the expected form."""
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(where, "expected a non-empty mapping of dotted keys to distributions")
    dims = []
    for name, spec in raw.items():
        at = f"{where}.{name}"
        if isinstance(spec, list):
            spec = {"type": "categorical", "choices": spec}
        if not isinstance(spec, Mapping) or spec.get("type") not in TYPES:
            raise InputError(at, f"expected a list of choices or a mapping with type one of {TYPES}")
        extra = sorted(set(spec) - {"type", "low", "high", "step", "log", "choices"})
        if extra:
            raise InputError(f"{at}.{extra[0]}", "unknown key; expected type, low, high, step, log, choices")
        if spec["type"] == "categorical":
            choices = spec.get("choices")
            if (
                not isinstance(choices, list)
                or not choices
                or not all(c is None or isinstance(c, bool | int | float | str) for c in choices)
            ):
                raise InputError(f"{at}.choices", "expected a non-empty list of scalars")
            dims.append(Dimension(name, "categorical", choices=tuple(choices)))
            continue
        low, high = spec.get("low"), spec.get("high")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise InputError(at, f"expected numbers low <= high, got low={low!r}, high={high!r}")
        log, step = bool(spec.get("log", False)), spec.get("step")
        if log and (low <= 0 or step is not None):
            raise InputError(at, "log scale needs low > 0 and no step")
        if spec["type"] == "int" and not all(isinstance(v, int) for v in (low, high, step or 1)):
            raise InputError(at, "an int dimension needs integer low, high and step")
        dims.append(Dimension(name, spec["type"], low, high, step, log))
    return tuple(dims)


def suggest(trial: optuna.Trial, dims: tuple[Dimension, ...]) -> dict[str, Any]:
    """One value per dimension, as {dotted key: value}."""
    out: dict[str, Any] = {}
    for d in dims:
        if d.type == "categorical":
            out[d.name] = trial.suggest_categorical(d.name, list(d.choices))
        elif d.type == "int":
            out[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), step=int(d.step or 1), log=d.log)
        else:
            out[d.name] = trial.suggest_float(d.name, float(d.low), float(d.high), step=d.step, log=d.log)
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'a.b': 1, 'a.c': 2} -> {'a': {'b': 1, 'c': 2}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def merge(base: Any, update: Any) -> Any:
    """Deep merge of params.yaml values; `update` wins. A preset name (`net: tiny`) updated by a
    mapping becomes `{preset: tiny, ...}`, the form the field and net options accept."""
    if not isinstance(update, Mapping):
        return update
    if isinstance(base, str):
        base = {"preset": base}
    if not isinstance(base, Mapping):
        return dict(update)
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(base.get(key), value) if key in base else value
    return out
