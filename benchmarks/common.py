"""Shared by the benchmark scripts: machine description, JSON results, BENCHMARKS.md sections.

Each script owns one section of BENCHMARKS.md (between `<!-- bench:NAME -->` markers) and rewrites
only that section, so reruns replace their own rows and leave the others alone.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def machine() -> dict[str, Any]:
    """Where the figures were measured: CPU model and core count, GPU name when one is used."""
    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def save_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        **payload,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def adopt_results(path: str) -> dict[str, Any]:
    """A results file measured elsewhere (fetched from a GPU machine), copied into benchmarks/results
    under its benchmark name unless it is already there; returns its contents."""
    results = json.loads(Path(path).read_text())
    target = RESULTS / f"{results['benchmark']}.json"
    if Path(path).resolve() != target.resolve():
        shutil.copy(path, target)
    return results


def add_note(name: str, results: dict[str, Any], note: str | None) -> None:
    """Store `note` (context shown under a section's title) in results/NAME.json and in `results`."""
    if note:
        results["note"] = note
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")


def fmt(x: float | None, spec: str) -> str:
    """A table cell: `x` formatted, or empty when not measured."""
    return "" if x is None else format(x, spec)


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) this benchmark's section of BENCHMARKS.md."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(text)


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rewrite_eval_section(path: str, key: str, note: str | None, section: Callable[[dict], str]) -> str:
    """Rewrite the `eval_<key>_<device>` section from an eval results file (`--from-json`).

    The file's `key` entry ("metrics" or "meshing") is merged into results/eval_<device>.json when it
    came from elsewhere or a note was added; returns the section name.
    """
    src = json.loads(Path(path).read_text())
    if note:
        src[key]["note"] = note
    kind = str(src[key]["device"]).split(":")[0]
    target = RESULTS / f"eval_{kind}.json"
    if note or Path(path).resolve() != target.resolve():
        payload = json.loads(target.read_text()) if target.exists() else {}
        payload.update({"machine": src.get("machine", payload.get("machine")), key: src[key]})
        target.write_text(json.dumps(payload, indent=2) + "\n")
    name = f"eval_{key}_{kind}"
    write_section(name, section(src))
    return name


def measured_on(m: dict[str, Any], cuda: bool, host_role: str = "host CPU") -> tuple[str, str]:
    """(where, host) for a section's first line: the GPU (or the CPU and its cores), and on a GPU the
    host CPU that did its part (`host_role` names that part)."""
    where = m.get("gpu", "GPU") if cuda else f"CPU {m.get('cpu')} ({m.get('cores')} cores)"
    host = f" ({host_role} {m.get('cpu')}, {m.get('cores')} cores)" if cuda else ""
    return where, host


def cpu_caveat(r: dict[str, Any], m: dict[str, Any]) -> str:
    """One sentence on what the results record about a CPU run's conditions (and its note, if any)."""
    if r.get("load_average_after"):
        said = (
            f"CPU caveat: {r.get('threads')} torch threads on {m.get('cores')} cores; load average "
            f"before / after {r['load_average_before'][0]:.1f} / {r['load_average_after'][0]:.1f}"
        )
    else:
        said = (
            f"CPU caveat: {m.get('cores')} cores, thread count and load average not recorded with these "
            "figures"
        )
    return f"{said}; {r['note'].rstrip('.')}." if r.get("note") else f"{said}."
