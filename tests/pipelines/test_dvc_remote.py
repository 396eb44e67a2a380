"""`make push` / `make pull` with the default DVC remote (a folder outside the repo): clone A runs a
real DVC pipeline and pushes; clone B pulls and gets the same outputs, clean `dvc status`, nothing rerun."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.tiny_project import REPO

BIN = Path(sys.executable).parent
STAGE = f"""stages:
  double:
    cmd: {sys.executable} double.py
    deps: [input.txt, double.py]
    outs: [out]
"""
SCRIPT = """import pathlib
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/result.txt").write_text(pathlib.Path("input.txt").read_text() * 2)
"""


def _run(cwd: Path, *cmd: str, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


def _make(cwd: Path, target: str, env: dict[str, str]) -> str:
    return _run(cwd, "make", "-f", str(REPO / "Makefile"), target, "SETUP=", f"BIN={BIN}", env=env)


def test_push_from_one_clone_pull_into_another(tmp_path):
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),  # the default remote: $HOME/.shd/dvc-remote, outside both clones
        "DVC_NO_ANALYTICS": "1",
        **{f"GIT_{who}_{what}": "t" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")},
    }
    a = tmp_path / "A"
    a.mkdir()
    _run(a, "git", "init", "-q", env=env)
    _run(a, str(BIN / "dvc"), "init", "-q", env=env)
    (a / "input.txt").write_text("weights\n")
    (a / "dvc.yaml").write_text(STAGE)
    (a / "double.py").write_text(SCRIPT)
    _run(a, str(BIN / "dvc"), "repro", env=env)
    _run(a, "git", "add", "-A", env=env)
    _run(a, "git", "commit", "-qm", "pipeline + dvc.lock", env=env)
    _make(a, "push", env)
    assert any((tmp_path / "home" / ".shd" / "dvc-remote").rglob("*")), "nothing pushed to the default remote"

    b = tmp_path / "B"
    _run(tmp_path, "git", "clone", "-q", str(a), str(b), env=env)
    assert not (b / "out").exists()
    _make(b, "pull", env)
    digest = [hashlib.md5((c / "out" / "result.txt").read_bytes()).hexdigest() for c in (a, b)]
    assert digest[0] == digest[1]
    assert "up to date" in _run(b, str(BIN / "dvc"), "status", env=env)
    repro = _run(b, str(BIN / "dvc"), "repro", env=env)
    assert "Running stage" not in repro, repro
