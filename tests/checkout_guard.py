"""Tests never write into the checkout: a snapshot of it at session start, compared at the end.

The snapshot holds `git status --porcelain` (a tracked file modified or a new untracked file shows up
there) and a stat signature (size, mtime in ns) of every file that git status lists and of every file
under the project's output folders, which git ignores and DVC tracks (`data/`, `models/`, ...). A
signature, not a content hash: on a checkout after `make repro` those folders hold gigabytes, and a
test that rewrites a file with the same bytes has still written into the checkout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# DVC outputs and the MLflow store: ignored by git, so git status alone would not see a test write there
OUTPUT_DIRS = (
    "data",
    "metrics",
    "models",
    "reports",
    "plots",
    "mlruns",
    "sweeps",
    "samples",
    "tests/_artifacts",
)

Snapshot = dict[str, tuple[int, int] | str | None]


def is_git_checkout(root: Path) -> bool:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout.strip() == "true"


def _porcelain(root: Path) -> list[str]:
    done = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain=v1", "-z", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [entry for entry in done.stdout.split("\0") if entry]


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def snapshot(root: Path) -> Snapshot:
    """{relative path: stat signature} of the files git status lists and of the output folders' files,
    plus one `git-status:<line>` key per status line (a change of state such as a deletion)."""
    root = Path(root)
    out: Snapshot = {}
    for entry in _porcelain(root):
        status, name = entry[:2], entry[3:]
        out[f"git-status:{status} {name}"] = "listed"
        out[name] = _signature(root / name)
    for folder in OUTPUT_DIRS:
        base = root / folder
        if base.is_dir():
            for path in base.rglob("*"):
                if not path.is_dir() or path.is_symlink():
                    out[path.relative_to(root).as_posix()] = _signature(path)
    return out


def changed_paths(before: Snapshot, after: Snapshot) -> list[str]:
    """Paths (and git status lines) that appeared, disappeared or changed between two snapshots."""
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k, "absent") != after.get(k, "absent"))


def report(root: Path, changes: list[str], limit: int = 20) -> str:
    shown = "\n  ".join(changes[:limit])
    more = f"\n  ... and {len(changes) - limit} more" if len(changes) > limit else ""
    return (
        f"the test session wrote into the checkout {root} (tests must write only under tmp_path):\n"
        f"  {shown}{more}"
    )
