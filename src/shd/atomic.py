"""Atomic file writes: a kill at any point leaves either the old file or the new one, never half.

Every output of every stage goes through these helpers (write to a temporary sibling, fsync, rename).
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temp_prefix(path: Path, pid: int | str = "") -> str:
    """`.<name>.<host>-<pid>-` (the random part and `.tmp` follow); without pid, the part before it."""
    base = f".{path.name}.{socket.gethostname()}-"
    return f"{base}{pid}-" if pid != "" else base


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of `path` left by writers on this host that died before their rename
    (SIGKILL, OOM): a rerun that rewrites a file also clears what a killed run left beside it."""
    prefix = _temp_prefix(path)
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc), else set and reset."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    The temporary's name carries host and pid, so a later write of `path` removes it if its writer
    was killed. The file gets the mode a plain open() would give (0666 less the umask), not
    mkstemp's private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path, os.getpid()), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, sort_keys=False, allow_nan=False) + "\n")


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Atomically write through a library call that wants a file name (np.savez, safetensors...)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def read_json_document(path: str | os.PathLike, missing: str, fmt: str | None = None) -> dict[str, Any]:
    """Read a JSON document written here; missing, unparsable or wrong-format files are InputErrors.

    `missing` says what to do when the file is absent (e.g. which stage writes it); `fmt`, when given,
    must equal the document's "format" field.
    """
    from shd.errors import InputError

    path = Path(path)
    if not path.exists():
        raise InputError(path, f"missing; {missing}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(path, "expected a JSON object at the top level")
    if fmt is not None and doc.get("format") != fmt:
        raise InputError(path, f"format is {doc.get('format')!r}, expected {fmt!r}")
    return doc


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if needed) for the block: serializes the
    processes of one machine (or of a shared filesystem with working flock) around a read-modify-write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
