"""Run the reliability suites (tests/reliability) and write RELIABILITY.md from the real outcome.

pytest writes a JUnit XML report; every test case is counted under the fault class of its module,
and a class's "lost" column comes from the failed cases (a failing case is one where something was
lost or an error was unclear). The kill tests record where each kill landed (`killed` property).

    python benchmarks/reliability_table.py            # fast subset (what CI runs by default)
    python benchmarks/reliability_table.py --all      # fast + slow (multi-seed kills, dvc repro, ...)
    python benchmarks/reliability_table.py --from-json benchmarks/results/reliability.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, save_json, table  # noqa: E402

SUITE = "tests/reliability"
CLASSES = {  # module -> (fault class, what "nothing lost" means there)
    "test_kill": (
        "Kill (SIGKILL at a seeded point, rerun)",
        "finished shards, checkpoints, MLflow run, complete metrics files",
    ),
    "test_malformed": (
        "Malformed input (files, meshes, shards, manifests, model layout)",
        "good inputs processed; no half-written output; error names the file",
    ),
    "test_numerical": (
        "Numerical faults (NaN/Inf in fits, diffusion, sampled weights)",
        "other shapes' fits, last good checkpoint, metrics",
    ),
    "test_services": ("Services (MLflow unreachable, SQLite locked)", "local results written before logging"),
    "test_untrusted": ("Untrusted files (pickles, server binding)", "no code executed from data files"),
    "test_registry": (
        "Registry writers (concurrent, failing mid-registration)",
        "no half-registered version, alias on the best version",
    ),
    "test_study": (
        "Optuna workers (threads at once, a worker dead before its first heartbeat)",
        "exact trial budget, no duplicated trial, no trial held forever",
    ),
    "test_sweep_runs": ("Optuna workers (killed mid-trial, two processes)", "finished trials, one study"),
}
# cases of the registry and sweep suites that are fault injection (the rest of those modules is not)
EXTRA = (
    "tests/tracking/test_registry.py::test_a_failed_registration_leaves_no_version_and_no_alias",
    "tests/tracking/test_registry.py::test_concurrent_registrations_leave_the_alias_on_the_best",
    "tests/sweep/test_study.py::test_concurrent_threads_end_with_exactly_the_budget",
    "tests/sweep/test_study.py::test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_replaced",
    "tests/sweep/test_sweep_runs.py::test_sweep_killed_mid_trial_resumes",
    "tests/sweep/test_sweep_runs.py::test_two_processes_share_one_study",
)
OUT = ROOT / "RELIABILITY.md"


def run_suite(include_slow: bool) -> list[dict[str, Any]]:
    """Run pytest on the suite; one dict per case (module, name, outcome, seconds, properties)."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            SUITE,
            *EXTRA,
            "-p",
            "no:cacheprovider",
            f"--junitxml={xml}",
            "-o",
            "junit_family=xunit1",
            "-m",
            "" if include_slow else "not slow",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        return parse_junit(xml)


def parse_junit(path: Path) -> list[dict[str, Any]]:
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        cases.append(
            {
                "module": module,
                "name": case.get("name"),
                "outcome": outcome,
                "seconds": float(case.get("time", 0)),
                "properties": props,
            }
        )
    return cases


def summarize(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for module, (label, kept) in CLASSES.items():
        mine = [c for c in cases if c["module"] == module and c["outcome"] != "skipped"]
        failed = [c["name"] for c in mine if c["outcome"] != "passed"]
        kills = [c["properties"][k] for c in mine for k in c["properties"] if k.startswith("killed")]
        rows.append(
            {
                "class": label,
                "tried": len(mine),
                "passed": len(mine) - len(failed),
                "failed": failed,
                "mid_run_kills": kills.count("True"),
                "kills": len(kills),
                "lost": "nothing" if not failed else f"see {', '.join(failed)}",
                "kept": kept,
                "seconds": round(sum(c["seconds"] for c in mine), 1),
            }
        )
    return rows


def markdown(payload: dict[str, Any]) -> str:
    rows = payload["rows"]
    m = payload["machine"]
    body = [
        "# Reliability",
        "",
        "Generated by `benchmarks/reliability_table.py` from a real run of `tests/reliability` "
        f"({payload['subset']}), {payload['date']} on {m.get('cpu')} ({m.get('cores')} cores), "
        "CPU only. Each case is one pytest case; a passing case means the fault was handled: a clear "
        "error naming the file/store where one is due, and nothing finished was lost. Fuzzed parser "
        f"cases each try {payload['fuzz_examples']} generated files.",
        "",
        table(
            ["fault class", "cases tried", "passed", "lost", "what is kept", "seconds"],
            [[r["class"], r["tried"], r["passed"], r["lost"], r["kept"], r["seconds"]] for r in rows],
        ),
        "",
    ]
    kills = sum(r["kills"] for r in rows)
    if kills:
        landed = sum(r["mid_run_kills"] for r in rows)
        body += [
            f"Kills sent while the process was still running: {landed} of {kills} kill points "
            "(the others fell after the process had finished; the rerun is checked either way).",
            "",
        ]
    body += [
        "Cases:",
        "",
        table(
            ["module", "case", "outcome", "seconds"],
            [[c["module"], f"`{c['name']}`", c["outcome"], round(c["seconds"], 1)] for c in payload["cases"]],
        ),
    ]
    return "\n".join(body) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="include the slow cases")
    parser.add_argument("--from-json", help="rewrite RELIABILITY.md from a saved results file")
    args = parser.parse_args()
    if args.from_json:
        payload = json.loads(Path(args.from_json).read_text())
    else:
        fuzz = re.search(r"max_examples=(\d+)", (ROOT / SUITE / "test_malformed.py").read_text())
        cases = run_suite(args.all)
        payload = {
            "subset": "fast and slow cases" if args.all else "fast cases only",
            "fuzz_examples": int(fuzz.group(1)) if fuzz else None,
            "cases": cases,
            "rows": summarize(cases),
        }
        path = save_json("reliability", payload)
        payload = json.loads(path.read_text())
    payload.setdefault("machine", machine())
    OUT.write_text(markdown(payload))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
