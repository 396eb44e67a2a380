"""The checkout guard (tests/checkout_guard.py) on a real temporary git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.checkout_guard import changed_paths, is_git_checkout, report, snapshot


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _repo(root: Path) -> Path:
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    (root / ".gitignore").write_text("/data/\n/mlruns/*\n__pycache__/\n")
    (root / "src.py").write_text("x = 1\n")
    (root / "data" / "eval").mkdir(parents=True)
    (root / "data" / "eval" / "samples.json").write_text("{}")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "init")
    return root


def test_an_untouched_checkout_has_no_changes(tmp_path):
    root = _repo(tmp_path)
    assert is_git_checkout(root) and not is_git_checkout(tmp_path.parent)
    (root / "src.py").write_text("x = 2\n")  # a developer's edit before the session is no change
    before = snapshot(root)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "src.pyc").write_bytes(b"\0")  # ignored, outside the output folders
    assert changed_paths(before, snapshot(root)) == []


def test_writes_into_tracked_untracked_and_output_paths_are_named(tmp_path):
    root = _repo(tmp_path)
    (root / "edited.py").write_text("y = 1\n")
    before = snapshot(root)
    (root / "src.py").write_text("x = 3\n")  # tracked
    (root / "edited.py").write_text("y = 2\n")  # already untracked, written again
    (root / "new.txt").write_text("new")  # untracked
    (root / "data" / "eval" / "samples.json").write_text('{"a": 1}')  # ignored output, rewritten
    (root / "mlruns").mkdir()
    (root / "mlruns" / "mlflow.db").write_bytes(b"db")  # ignored output, created
    changes = changed_paths(before, snapshot(root))
    for path in ("src.py", "edited.py", "new.txt", "data/eval/samples.json", "mlruns/mlflow.db"):
        assert path in changes, changes
    assert "data/eval/samples.json" in report(root, changes)


def test_a_deleted_output_is_a_change(tmp_path):
    root = _repo(tmp_path)
    before = snapshot(root)
    (root / "data" / "eval" / "samples.json").unlink()
    assert changed_paths(before, snapshot(root)) == ["data/eval/samples.json"]
