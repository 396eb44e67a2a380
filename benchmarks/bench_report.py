"""The evaluation report for 100 shapes: page weight, build time, and load / first-render time in Chromium.

Rerun: `PYTHONPATH=src python benchmarks/bench_report.py --project /path/to/project` (a project after
`make repro`: its data/weights, data/samples and models/diffusion). Two real evaluations are built in
a temporary folder with the evaluate stage's own function: `--n` (100) samples of the project's
diffusion model, and the project's fitted fields used as the generated set (clean shapes, the look of
a well-trained model). Each page is built with the params.yaml defaults of `report` and opened in
headless Chromium (SwiftShader WebGL, CPU): load event, first viewer drawn, the first screen drawn,
and every viewer visited by scrolling. Writes benchmarks/results/report.json and the `report` section
of BENCHMARKS.md (`--from-json FILE [--note TEXT]` only rewrites the section from a results file).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import save_json, table, write_section

from shd.eval.evaluate import EvalPaths, EvaluateConfig, evaluate_stage, n_to_sample
from shd.fields.weight_set import WeightSet
from shd.report import ReportConfig, build_report, from_project
from shd.report.browser import Browser

VIEWERS = "document.querySelectorAll('.viewer[data-mesh]')"


def evaluate_into(root: Path, project: Path, generated: torch.Tensor, name: str) -> None:
    cfg = EvaluateConfig(render_count=0, device="cpu")
    evaluate_stage(
        project / "data/weights",
        project / "data/samples",
        EvalPaths.under(root),
        cfg,
        generated=generated,
        generator_name=name,
        track=False,
    )


def open_in_browser(page: Path) -> dict[str, float]:
    """Seconds to the load event, to the first viewer drawn, to the first screen drawn, to every viewer
    drawn while scrolling through the page (a reader's pace is slower: this is the browser's)."""
    with Browser(width=1280, height=900, timeout=300) as browser:
        start = time.monotonic()
        load = browser.open(page)
        browser.wait_for(
            "window.shdReport && window.shdReport.started > 0 && "
            "window.shdReport.drawn + window.shdReport.failed >= window.shdReport.started",
            300,
        )
        first_screen = time.monotonic() - start
        first = browser.evaluate("window.shdReport.firstDrawMs") / 1000
        n = browser.evaluate(f"{VIEWERS}.length")
        for i in range(n):
            browser.evaluate(f"{VIEWERS}[{i}].scrollIntoView()")
            browser.wait_for(f"['drawn', 'error'].includes({VIEWERS}[{i}].dataset.state)", 300)
        every = time.monotonic() - start
        state = browser.evaluate("window.shdReport")
        if browser.log.errors or state["failed"]:
            raise RuntimeError(f"the page reported errors: {browser.log.errors} {state['errors']}")
    return {
        "load_s": load,
        "first_viewer_s": first,
        "first_screen_s": first_screen,
        "all_viewers_s": every,
        "drawn": state["drawn"],
    }


def measure(root: Path, cfg: ReportConfig) -> dict[str, Any]:
    start = time.perf_counter()
    summary = build_report(from_project(root), root / "report.html", cfg)
    build_s = time.perf_counter() - start
    faces = np.asarray(summary.faces)
    kept = json.loads((root / "data/eval/samples.json").read_text())["generated"]
    return {
        "shapes": len(kept),
        "meshed": sum(r["mesh_status"] == "ok" for r in kept),
        "viewers": summary.n_viewers,
        "meshes": summary.n_meshes,
        "mb": summary.bytes / 1e6,
        "faces_mean": float(faces.mean()) if len(faces) else 0.0,
        "faces_max": int(faces.max()) if len(faces) else 0,
        "build_s": build_s,
        "build_parts_s": summary.seconds,
        **open_in_browser(root / "report.html"),
    }


def section(payload: dict[str, Any]) -> str:
    cfg = payload["report_config"]
    rows = [
        [
            name,
            f"{c.get('meshed', '?')} / {c.get('shapes', '?')}",
            c["viewers"],
            c["meshes"],
            f"{c['faces_mean']:.0f} / {c['faces_max']}",
            f"{c['mb']:.1f}",
            f"{c['build_s']:.1f}",
            f"{c['load_s']:.2f}",
            f"{c['first_viewer_s']:.2f}",
            f"{c['first_screen_s']:.2f}",
            f"{c['all_viewers_s']:.1f}",
        ]
        for name, c in payload["cases"].items()
    ]
    cores = payload.get("machine", {}).get("cores")
    return "\n".join(
        [
            "## Evaluation report page (`benchmarks/bench_report.py`)",
            "",
            f"CPU ({cores} cores, torch 1 thread), display meshes at {cfg['resolution']}^3 with at most "
            f"{cfg.get('max_faces')} faces, headless Chromium with SwiftShader "
            "(CPU) WebGL. Meshed = generated "
            "shapes with a mesh / shown; viewers = meshed generated + their nearest training shapes + 8 "
            "worst-covered references (as many as the test split has); meshes = distinct meshes stored (a "
            "training shape nearest to several samples is stored once). Times in "
            "seconds: build (meshing + GLB "
            "+ HTML), the load event, the first viewer drawn, the first screen "
            "drawn, every viewer drawn while "
            "scrolling through the page.",
            "",
            table(
                [
                    "generated set",
                    "meshed",
                    "viewers",
                    "meshes",
                    "faces mean / max",
                    "MB",
                    "build s",
                    "load s",
                    "first viewer s",
                    "first screen s",
                    "all viewers s",
                ],
                rows,
            ),
            *([f"\n{payload['note']}"] if payload.get("note") else []),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--n", type=int, default=100, help="diffusion samples (shapes on the page)")
    parser.add_argument("--from-json", type=Path, help="only rewrite the section from this results file")
    parser.add_argument("--note", help="a note under the table (with --from-json: stored in the file)")
    args = parser.parse_args()
    if args.from_json:
        payload = json.loads(args.from_json.read_text())
        if args.note:
            payload["note"] = args.note
            args.from_json.write_text(json.dumps(payload, indent=2) + "\n")
        write_section("report", section(payload))
        return
    torch.set_num_threads(1)
    project = args.project.resolve()
    cfg = ReportConfig(device="cpu")
    cases: dict[str, dict[str, Any]] = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        from shd.diffusion.api import sample_generated

        category, _ = n_to_sample(project / "data/weights", project / "data/samples", EvaluateConfig())
        flat = sample_generated(
            project / "models/diffusion", args.n, category=category, seed=0, device=torch.device("cpu")
        )
        evaluate_into(Path(tmp) / "diffusion", project, flat, "diffusion")
        cases[f"{args.n} diffusion samples"] = measure(Path(tmp) / "diffusion", cfg)
        weights = WeightSet.open(project / "data/weights")
        fits = weights.load_flat(weights.ids(category=category))
        evaluate_into(Path(tmp) / "fits", project, fits, "fitted_fields")
        cases[f"{len(fits)} fitted fields"] = measure(Path(tmp) / "fits", cfg)
    payload = {
        "project": str(project),
        "report_config": asdict(cfg),
        "load_average_at_start": load,
        "cases": cases,
        **({"note": args.note} if args.note else {}),
    }
    write_section("report", section(json.loads(save_json("report", payload).read_text())))


if __name__ == "__main__":
    main()
