"""The paper-scale run on a GPU machine and where its time goes: `make repro PROFILE=shapenet-gpu`, stage by
stage.

Builds the profile's workspace (`make workspace`: runs/<profile>/, its own DVC project), then runs the
stages in dvc.yaml's dependency order, timing each: through `dvc repro --single-item <stage>` when DVC is
installed (what `make repro PROFILE=...` runs), else the stage's own command from dvc.yaml (`python
pipelines/<stage>.py`, same params.yaml, same outputs; the offline GPU machine carries no DVC unless its
image has pandas, see benchmarks/gpu_wheels.sh). After every stage it rewrites OUT/paper_scale_run.json
(card, commit, command, stage seconds, exit codes), so a run cut off by the call's time limit still says how
far it got; all stage output goes to OUT/paper_scale_log.txt; at the end OUT/paper_scale_outputs.tar.gz
holds metrics/, the reports' PNGs and the exported model's config.json.

On the GPU machine, from the repository root (wheels: benchmarks/gpu_setup.sh):
    bash benchmarks/gpu_setup.sh && python3 benchmarks/paper_scale_run.py --out $OUT --commit <sha>
Back here: python benchmarks/paper_scale_run.py --collect FETCHED/paper_scale_run.json
(merges wall_seconds, stages, card, commit and command into benchmarks/results/paper_scale.json, leaving its
quality rows alone, and writes the BENCHMARKS.md section `paper_scale_stages`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false", "DVC_NO_ANALYTICS": "1"}
SITE = Path("/tmp/shd-site")  # where benchmarks/gpu_setup.sh installs when the environment is read-only
if SITE.is_dir():
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p)


def stage_order(dvc_yaml: Path) -> list[str]:
    """Stages of a dvc.yaml in dependency order (a stage after every stage whose outs its deps lie in),
    ties in file order."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]

    def paths(items: list[Any]) -> list[str]:
        return [str(next(iter(i))) if isinstance(i, dict) else str(i) for i in items or []]

    outs = {name: paths(s.get("outs")) + paths(s.get("metrics")) for name, s in stages.items()}

    def needs(name: str) -> set[str]:
        deps = paths(stages[name].get("deps"))
        return {
            other
            for other, made in outs.items()
            if other != name
            and any(d == o or d.startswith(o + "/") or o.startswith(d + "/") for d in deps for o in made)
        }

    order: list[str] = []
    while len(order) < len(stages):
        ready = [n for n in stages if n not in order and needs(n) <= set(order)]
        if not ready:
            raise ValueError(f"{dvc_yaml}: a dependency cycle among {sorted(set(stages) - set(order))}")
        order.append(ready[0])
    return order


def card() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        if names:
            return f"{len(names)} x {names[0]}" if len(names) > 1 else names[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "no GPU (CPU)"


def commit_of(given: str | None) -> str:
    if given:
        return given
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown (no git here: pass --commit)"


def make_workspace(profile: str, python_bin: Path) -> Path:
    """`make workspace PROFILE=...` with this interpreter's folder as BIN (its dvc, when installed)."""
    if shutil.which("make") is None:
        raise SystemExit("paper_scale_run: `make` is needed to build the profile's workspace (Makefile)")
    subprocess.run(
        ["make", "-s", "workspace", f"PROFILE={profile}", f"BIN={python_bin}"], cwd=ROOT, check=True
    )
    return ROOT / "runs" / profile


def has_dvc(python: str) -> bool:
    return subprocess.run([python, "-m", "dvc", "--version"], capture_output=True).returncode == 0


def run_stages(
    workspace: Path, stages: list[str], use_dvc: bool, out: Path, record: dict[str, Any], python: str
) -> int:
    """Run each stage in `workspace`, timing it; rewrite the record after each. Returns the first failure's
    exit code (0: all ran)."""
    cmds = yaml.safe_load((workspace / "dvc.yaml").read_text())["stages"]
    shim = Path(tempfile.mkdtemp(prefix="shd-python-"))
    # the stages' `python` is this interpreter (a script, not a link: a linked venv python loses its venv)
    (shim / "python").write_text(f'#!/bin/sh\nexec "{python}" "$@"\n')
    (shim / "python").chmod(0o755)
    env = {**os.environ, **ENV, "PATH": f"{shim}:{os.environ.get('PATH', '')}"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(workspace / "src"), env.get("PYTHONPATH")) if p)
    log_path = out / "paper_scale_log.txt"
    record_path = out / "paper_scale_run.json"
    start = time.perf_counter()
    rc = 0
    for name in stages:
        cmd = (
            [python, "-m", "dvc", "repro", "--single-item", name]
            if use_dvc
            else ["bash", "-c", cmds[name]["cmd"]]
        )
        record["running"] = name
        record_path.write_text(json.dumps(record, indent=2) + "\n")
        t0 = time.perf_counter()
        with log_path.open("a") as log:
            log.write(f"\n===== {name}: {' '.join(cmd)}\n")
            log.flush()
            rc = subprocess.run(cmd, cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        seconds = time.perf_counter() - t0
        record["stages"][name] = round(seconds, 1)
        record["exit_codes"][name] = rc
        record["wall_seconds"] = round(time.perf_counter() - start, 1)
        record.pop("running", None)
        record_path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"STAGE {name} rc={rc} {seconds:.1f} s", flush=True)
        if rc != 0:
            break
    shutil.rmtree(shim, ignore_errors=True)
    return rc


def bundle(workspace: Path, out: Path) -> Path:
    """metrics/, plots/, the reports' PNGs / JSON and the model's config.json in one archive (OUT takes 8
    files)."""
    path = out / "paper_scale_outputs.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for rel in ("metrics", "plots", "models/diffusion/model/config.json", "reports/validation.json"):
            if (workspace / rel).exists():
                tar.add(workspace / rel, arcname=rel)
        for png in sorted((workspace / "reports").glob("*.png")):
            tar.add(png, arcname=f"reports/{png.name}")
    return path


def collect(path: str) -> None:
    """Merge a run's stage times into benchmarks/results/paper_scale.json; write the BENCHMARKS.md section."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import RESULTS, table, write_section

    run = json.loads(Path(path).read_text())
    target = RESULTS / "paper_scale.json"
    results = json.loads(target.read_text()) if target.exists() else {"benchmark": "paper_scale"}
    for key in ("wall_seconds", "stages", "card", "commit", "command", "profile", "runner"):
        results[key] = run.get(key)
    results["run_date"] = run.get("date")  # "date" stays the quality rows' own
    target.write_text(json.dumps(results, indent=2) + "\n")
    rows = [[name, f"{sec:.0f}", run["exit_codes"].get(name)] for name, sec in run["stages"].items()]
    rows.append(["**whole run**", f"**{run['wall_seconds']:.0f}**", ""])
    text = "\n".join(
        [
            f"## Where the paper-scale run's time goes ({run['card']})",
            "",
            f"`{run['command']}` (profile `{run['profile']}`, stages {run['runner']}), commit "
            f"{run['commit']}, {run['date']}. Seconds per stage, wall clock, stage start to end (imports and "
            "logging included):",
            "",
            table(["stage", "seconds", "exit code"], rows),
        ]
    )
    write_section("paper_scale_stages", text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="shapenet-gpu")
    parser.add_argument(
        "--out", default=os.environ.get("OUT", "paper_scale_out"), help="results folder ($OUT)"
    )
    parser.add_argument("--commit", help="the commit being run (the GPU machine has no .git)")
    parser.add_argument(
        "--dvc", choices=("auto", "on", "off"), default="auto", help="stages through dvc repro"
    )
    parser.add_argument("--stages", nargs="*", help="a subset, in dvc.yaml's order (default: all)")
    parser.add_argument("--workspace", help="an existing workspace (default: make workspace PROFILE=...)")
    parser.add_argument("--collect", help="here: merge a fetched paper_scale_run.json into the results")
    args = parser.parse_args()
    if args.collect:
        collect(args.collect)
        return
    python = sys.executable
    use_dvc = {"on": True, "off": False}.get(args.dvc, has_dvc(python))
    if args.dvc == "on" and not has_dvc(python):
        raise SystemExit("--dvc on: DVC is not installed for this python")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workspace = Path(args.workspace) if args.workspace else make_workspace(args.profile, Path(python).parent)
    order = stage_order(workspace / "dvc.yaml")
    stages = [s for s in order if not args.stages or s in args.stages]
    unknown = sorted(set(args.stages or []) - set(order))
    if unknown:
        raise SystemExit(f"--stages: unknown {unknown}; dvc.yaml has {order}")
    record: dict[str, Any] = {
        "benchmark": "paper_scale_run",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "card": card(),
        "commit": commit_of(args.commit),
        "profile": args.profile,
        "command": f"make repro PROFILE={args.profile}",
        "runner": "dvc repro --single-item, stage by stage"
        if use_dvc
        else "dvc.yaml's stage commands (no DVC)",
        "workspace": str(workspace),
        "stages": {},
        "exit_codes": {},
        "wall_seconds": 0.0,
    }
    rc = run_stages(workspace, stages, use_dvc, out, record, python)
    bundle(workspace, out)
    print(json.dumps({"wall_seconds": record["wall_seconds"], "stages": record["stages"]}), flush=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
