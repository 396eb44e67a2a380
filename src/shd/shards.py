"""Sharded tensor storage: safetensors files carrying their own JSON metadata, written atomically.

Used for occupancy samples (data layer) and fitted weights (fields layer). A shard is complete exactly
when its file exists (atomic rename), and its metadata records the fingerprint of the config and
inputs that produced it, so an interrupted stage resumes by keeping shards whose fingerprint matches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from shd.atomic import write_with
from shd.errors import InputError

META_KEY = "shd"


def fingerprint(*parts: Any) -> str:
    """Stable short hash of JSON-serializable config/inputs (key order independent)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def write_shard(path: str | Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Atomically write numpy tensors plus JSON metadata to one safetensors file."""
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    header = {META_KEY: json.dumps(meta, allow_nan=False)}
    write_with(path, lambda tmp: save_file(arrays, str(tmp), metadata=header))


def read_shard_meta(path: str | Path) -> dict[str, Any]:
    """Read only the JSON metadata of a shard (cheap: the header)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            raw = (fh.metadata() or {}).get(META_KEY)
        if raw is None:
            raise ValueError(f"no '{META_KEY}' metadata")
        return json.loads(raw)
    except FileNotFoundError:
        raise InputError(path, "shard file is missing") from None
    except Exception as exc:
        raise InputError(path, f"not a readable shd safetensors shard ({exc})") from None


def read_shard(path: str | Path, keys: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Read tensors (all, or `keys`) and metadata; a damaged file is an InputError naming it."""
    path = Path(path)
    meta = read_shard_meta(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            names = list(fh.keys()) if keys is None else keys
            tensors = {k: fh.get_tensor(k) for k in names}
    except Exception as exc:
        raise InputError(path, f"cannot read tensors {keys or 'all'} ({exc})") from None
    return tensors, meta


def shard_matches(path: str | Path, fp: str, ids: list[str]) -> bool:
    """True when a finished shard exists with this fingerprint and these shape ids (resume check)."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        meta = read_shard_meta(path)
    except InputError:
        return False
    return meta.get("fingerprint") == fp and meta.get("shape_ids") == list(ids)
