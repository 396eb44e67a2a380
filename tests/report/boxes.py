"""A real evaluation of box-field shapes (tests/eval/evaluate_data.py) and its report, with one
application panel written the way the `shd` application commands write theirs (summary.json + files)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from shd.eval.evaluate import EvalPaths, EvaluateConfig, evaluate_stage
from shd.eval.export import export_mesh
from shd.eval.reconstruct import mesh_weights
from shd.eval.render import render_strip
from shd.fields.weight_set import WeightSet
from shd.report import ReportConfig, build_report, from_project
from tests.eval.evaluate_data import PARTS, make_project, nan_rows

APP_MESHES = 1  # meshes in the application panel
REPORT = Path("reports/eval_report.html")


def write_app_panel(folder: Path, weights: WeightSet) -> Path:
    """reports/apps/hybrid/: a child mesh (PLY), its PNG strip and its CD figures, named in summary.json."""
    meshes = mesh_weights(
        weights.load_flat(weights.ids(split="test")[:2]), weights.layout, weights.field, resolution=24
    )
    folder.mkdir(parents=True, exist_ok=True)
    export_mesh(meshes[0], folder / "child.ply", PARTS)
    render_strip(meshes, folder / "strip.png", part_names=PARTS, dpi=40)
    summary = {
        "command": "hybrid",
        "files": {"meshes": ["child.ply"], "png": "strip.png"},
        "cd": {"child_to_parent_a": 0.0123, "child_to_parent_b": 0.0456},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


DISPLAY = ReportConfig(resolution=24)


def build_box_report(root: Path, cfg: ReportConfig = DISPLAY) -> Path:
    """Evaluate the training box fields as a generator (one NaN sample) with the single-MLP baseline,
    then build the report at `root`/reports/eval_report.html; returns `root`."""
    torch.set_num_threads(1)
    project = make_project(root)
    weights = WeightSet.open(project.weights)
    generated = nan_rows(weights.load_flat(weights.ids(split="train")), [1])
    ecfg = EvaluateConfig(
        resolution=32, n_points=256, render_count=0, device="cpu", baseline_weights=str(project.baseline)
    )
    evaluate_stage(
        project.weights,
        project.samples,
        EvalPaths.under(root),
        ecfg,
        generated=generated,
        generator_name="sampler",
    )
    write_app_panel(root / "reports/apps/hybrid", weights)
    build_report(from_project(root), root / REPORT, cfg)
    return root
