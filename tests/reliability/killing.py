"""Kill a pipeline stage with SIGKILL at a seeded random point, then let the test rerun it.

Generic over the command: `kill_stage` runs `python pipelines/<stage>.py` in a project made by
`tests.tiny_project.make_project`; `kill_command` takes any command (`dvc repro`, a CLI call that
registers a model, an Optuna worker...). The kill point is a trigger (a line in the output matching a
regex, or a file appearing), then a delay drawn from `random.Random(seed)` in `delay` seconds. The
whole process group started here is killed, as a scheduler or the OOM killer would: children die too.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.tiny_project import stage_env


@dataclass
class Outcome:
    """What happened to one run: killed or finished on its own, when, and its output so far."""

    killed: bool  # SIGKILL was sent while the process was alive
    returncode: int
    trigger_s: float | None  # seconds from start to the trigger (None: it never fired)
    end_s: float  # seconds from start to the process's end
    delay_s: float  # the seeded delay after the trigger
    output: str


def kill_command(
    cmd: list[str],
    cwd: Path,
    *,
    seed: int,
    trigger_line: str | None = None,
    trigger_file: Path | None = None,
    delay: tuple[float, float] = (0.0, 0.0),
    env: dict[str, str] | None = None,
    kill: bool = True,
    timeout: float = 600,
) -> Outcome:
    """Run `cmd`; once the trigger fires wait a seeded delay in `delay`, then SIGKILL its process group.

    With no trigger the delay counts from the start. `kill=False` runs to the end and records when the
    trigger fired (to measure the window a later kill is drawn from).
    """
    wait = random.Random(seed).uniform(*delay)
    pattern = re.compile(trigger_line) if trigger_line else None
    fired = threading.Event()
    if pattern is None and trigger_file is None:
        fired.set()
    lines: list[str] = []
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env if env is not None else stage_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if pattern is not None and pattern.search(line):
                fired.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    trigger_s = 0.0 if fired.is_set() else None
    killed = False
    while proc.poll() is None and time.monotonic() - start < timeout:
        if trigger_s is None and (fired.is_set() or (trigger_file is not None and trigger_file.exists())):
            trigger_s = time.monotonic() - start
        if kill and trigger_s is not None and time.monotonic() - start >= trigger_s + wait:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the group this call started (start_new_session)
                killed = True
            break
        time.sleep(0.005)
    if proc.poll() is None and not killed:  # timed out
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(timeout=10)
    return Outcome(killed, proc.returncode, trigger_s, time.monotonic() - start, wait, "".join(lines))


def kill_stage(root: Path, stage: str, **kwargs) -> Outcome:
    """`kill_command` for one stage entry (`python pipelines/<stage>.py`) in the project at `root`."""
    return kill_command([sys.executable, f"pipelines/{stage}.py"], root, **kwargs)


def copy_project(src: Path, dst: Path, keep: tuple[str, ...]) -> Path:
    """A copy of a tiny project with only `keep` (relative paths) of its products; code stays linked."""
    dst.mkdir(parents=True)
    for name in ("dvc.yaml", "pipelines", "params.yaml"):
        (shutil.copytree if (src / name).is_dir() else shutil.copy)(src / name, dst / name)
    (dst / "src").symlink_to((src / "src").resolve())
    for rel in keep:
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (src / rel).is_dir() else shutil.copy2)(src / rel, target)
    return dst


def leftover_temporaries(root: Path) -> list[Path]:
    """Temporary files of interrupted atomic writes (`.<name>.<random>.tmp`) under `root`."""
    return sorted(p for p in root.rglob(".*.tmp") if p.is_file())
