"""Build the interactive evaluation report: one self-contained HTML file per evaluation.

Display budget (measured in BENCHMARKS.md, `benchmarks/bench_report.py`): every shape is meshed at
`report.resolution` (default 40^3) instead of being decimated, since no decimation library is installed
(trimesh's quadric decimation needs fast_simplification) and a coarser marching-cubes grid of the same
field is both cheaper and faithful: ~1.1k faces (max ~1.6k) and ~24 kB of GLB (~32 kB in base64) a
fitted airplane. A noisy sample with more than `report.max_faces` (3,000) is meshed again on a coarser
grid, so no shape costs more than ~85 kB on the page: 100 generated shapes beside their nearest
training shapes stay under ~18 MB at the cap and ~8 MB typically, one three.js copy (0.7 MB)
included. Training and reference shapes are shown as their fitted fields, meshed the same way, so a
difference seen is a difference of shape.
"""

from __future__ import annotations

import base64
import html
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shd import paths
from shd.atomic import write_text
from shd.devices import resolve_device
from shd.errors import InputError
from shd.eval.meshing import REFERENCE_LEVEL, MeshResult
from shd.eval.reconstruct import mesh_weights
from shd.fields.weight_set import WeightSet
from shd.report import apps, page, quality
from shd.report.inputs import EvalOutputs
from shd.report.viewer import glb_base64, mesh_block, placeholder_div, viewer_div, viewer_script

MIN_RESOLUTION = 16


@dataclass(frozen=True)
class ReportConfig:
    """params.yaml section `report`."""

    resolution: int = 40  # display meshes: marching-cubes grid (~1.1k faces an airplane at 40)
    max_faces: int = 3000  # a display mesh over this is meshed again on a coarser grid
    max_shapes: int = 100  # generated shapes shown, each beside its nearest training shape
    worst_covered: int = 8  # references farthest from every generated shape
    viewer_px: int = 200  # viewer size on the page
    apps: str = str(paths.APPS_REPORTS)  # folder whose */summary.json become application panels
    quality_table: str = str(paths.QUALITY_TABLE)  # the quality table's panel, when the file exists
    max_app_faces: int = 20000  # application meshes larger than this are listed, not embedded
    max_app_image_bytes: int = 3_000_000  # larger application images are listed, not embedded
    batch_size: int = 8
    device: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            (self.resolution >= MIN_RESOLUTION, "resolution", f"must be >= {MIN_RESOLUTION}"),
            (self.max_faces >= 100, "max_faces", "must be >= 100"),
            (self.max_shapes >= 0 and self.worst_covered >= 0, "max_shapes", "counts must be >= 0"),
            (self.viewer_px >= 64, "viewer_px", "must be >= 64"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
        ]
        for ok, key, problem in checks:
            if not ok:
                raise InputError(f"report.{key}", f"{problem}, got {getattr(self, key)!r}")


@dataclass
class ReportSummary:
    """What was written: counts and sizes for the log line and the benchmark."""

    path: Path
    n_viewers: int
    n_meshes: int
    bytes: int
    faces: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class MeshStore:
    """The page's meshes, each stored once under a key however many viewers show it."""

    def __init__(self, part_names: list[str] | None):
        self.part_names = part_names
        self.blocks: dict[str, str] = {}
        self.faces: list[int] = []
        self.n_viewers = 0

    def key(self, raw: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.:-]", "_", raw)

    def add_mesh(self, raw_key: str, mesh: MeshResult) -> str:
        key = self.key(raw_key)
        if key not in self.blocks:
            self.blocks[key] = mesh_block(key, glb_base64(mesh, self.part_names))
            self.faces.append(len(mesh.faces))
        return key

    def add_glb(self, raw_key: str, glb: bytes, n_faces: int) -> str:
        key = self.key(raw_key)
        if key not in self.blocks:
            self.blocks[key] = mesh_block(key, base64.b64encode(glb).decode("ascii"))
            self.faces.append(n_faces)
        return key

    def cell(self, raw_key: str, mesh: MeshResult | None, caption: str, missing: str = "no mesh") -> str:
        """A viewer of `mesh`, or a placeholder naming why there is none."""
        if mesh is None or not mesh.ok or len(mesh.faces) == 0:
            reason = missing if mesh is None else f"{mesh.status}: {mesh.reason}"
            return placeholder_div(reason, caption)
        self.n_viewers += 1
        return viewer_div(self.add_mesh(raw_key, mesh), caption)


def _mesh(flat: torch.Tensor, weights: WeightSet, cfg: ReportConfig, level: float) -> list[MeshResult]:
    """Display meshes at `cfg.resolution`; a mesh over `cfg.max_faces` (a noisy sample) is meshed again
    on a coarser grid (faces grow with the square of the resolution) until it fits or the grid is 16."""
    if len(flat) == 0:
        return []
    device = resolve_device(cfg.device, "report.device")

    def mesh(rows: torch.Tensor, resolution: int) -> list[MeshResult]:
        return mesh_weights(
            rows,
            weights.layout,
            weights.field,
            resolution=resolution,
            level=level,
            batch_size=cfg.batch_size,
            device=device,
        )

    meshes = mesh(flat, cfg.resolution)
    for i, m in enumerate(meshes):
        resolution = cfg.resolution
        while m.ok and len(m.faces) > cfg.max_faces and resolution > MIN_RESOLUTION:
            resolution = max(MIN_RESOLUTION, int(resolution * 0.95 * math.sqrt(cfg.max_faces / len(m.faces))))
            m = mesh(flat[i : i + 1], resolution)[0]
        meshes[i] = m
    return meshes


def _fitted(weights: WeightSet, ids: list[str], cfg: ReportConfig, level: float) -> dict[str, MeshResult]:
    """Display meshes of the weight set's fitted fields for these ids (ids it lacks are left out)."""
    known = [i for i in dict.fromkeys(ids) if i in weights.records]
    return dict(zip(known, _mesh(weights.load_flat(known), weights, cfg, level), strict=True))


def _cd(value: Any) -> str:
    return page.fmt(value) if isinstance(value, float | int) else "n/a"


def generated_section(
    outputs: EvalOutputs, weights: WeightSet, store: MeshStore, cfg: ReportConfig, level: float
) -> str:
    """Each generated shape beside its nearest training shape and their CD; near-copies outlined."""
    rows = outputs.samples["generated"][: cfg.max_shapes]
    shown = [r for r in rows if r["mesh_status"] == "ok"]
    index = [r["index"] for r in shown]
    meshes = dict(zip(index, _mesh(outputs.generated[index], weights, cfg, level), strict=True))
    train = _fitted(weights, [r["nearest_train"]["id"] for r in shown if r["nearest_train"]], cfg, level)
    yardstick = (outputs.metrics.get("novelty") or {}).get("train_median_nn")
    cards = []
    for r in rows:
        i, near, ref = r["index"], r["nearest_train"], r["nearest_reference"]
        name = r["shape_id"] or f"sample {i}"
        scored = f"CD to nearest reference {_cd(ref['cd'])}" if ref else "not scored (clipped or empty)"
        left = store.cell(
            f"g{i}", meshes.get(i), f"<b>{html.escape(name)}</b><br>{scored}", missing=r["mesh_status"]
        )
        if near:
            copy = isinstance(yardstick, float) and isinstance(near["cd"], float) and near["cd"] < yardstick
            right = store.cell(
                f"t:{near['id']}",
                train.get(near["id"]),
                f"nearest training shape {html.escape(near['id'])}<br>"
                f'<b data-cd-train="{i}">CD {_cd(near["cd"])}</b>'
                + (" (closer than training shapes are to each other)" if copy else ""),
                missing="not in the weight set",
            )
        else:
            copy, right = False, placeholder_div("no nearest training shape", "")
        cards.append(f'<div class="pair{" copy" if copy else ""}" data-sample="{i}">{left}{right}</div>')
    more = len(outputs.samples["generated"]) - len(rows)
    intro = (
        f"The first {len(rows)} generated shapes, each beside the training shape nearest to it (Chamfer "
        f"distance, {html.escape(str(outputs.metrics.get('normalization')))} normalization). Pairs "
        "outlined in orange are closer than the training set's own median nearest-neighbour distance: "
        "likely memorized. Drag to rotate, double-click to reset."
        + (f" {more} more are not shown (report.max_shapes)." if more > 0 else "")
    )
    return page.section(
        "Generated shapes and their nearest training shapes",
        intro,
        f'<div class="grid">{"".join(cards)}</div>',
        "generated",
    )


def worst_covered_section(
    outputs: EvalOutputs, weights: WeightSet, store: MeshStore, cfg: ReportConfig, level: float
) -> str:
    """The references farthest from every generated shape: what the model misses."""

    def badness(ref: dict[str, Any]) -> float:
        cd = ref["nearest_generated_cd"]
        return math.inf if cd is None else cd

    refs = sorted(outputs.samples["references"], key=badness, reverse=True)[: cfg.worst_covered]
    meshes = _fitted(weights, [r["id"] for r in refs], cfg, level)
    cells = [
        store.cell(
            f"r:{r['id']}",
            meshes.get(r["id"]),
            f"<b>{html.escape(r['id'])}</b><br>CD to nearest generated "
            f"{_cd(r['nearest_generated_cd'])}<br>nearest reference of {r['n_nearest_of']} "
            "samples",
            missing="not in the weight set",
        )
        for r in refs
    ]
    intro = (
        "Test shapes whose nearest generated shape is farthest (largest CD): the shapes the model does "
        "not cover, shown as their fitted fields."
    )
    return page.section(
        "Worst-covered reference shapes", intro, f'<div class="grid">{"".join(cells)}</div>', "worst"
    )


def build_page(
    outputs: EvalOutputs, cfg: ReportConfig = ReportConfig(), apps_dir: str | Path | None = None
) -> tuple[str, MeshStore, dict[str, float]]:
    """The report's HTML text, its mesh store (for counts) and the seconds each part took."""
    seconds: dict[str, float] = {}
    weights = WeightSet.open(outputs.weights)
    metrics = outputs.metrics
    category = metrics.get("category") or next(iter(weights.manifest["categories"]))
    part_names = weights.manifest["categories"].get(category)
    level = float((metrics.get("protocol") or {}).get("level", REFERENCE_LEVEL))
    store = MeshStore(part_names)

    start = time.perf_counter()
    shapes = generated_section(outputs, weights, store, cfg, level)
    seconds["generated"] = time.perf_counter() - start
    start = time.perf_counter()
    worst = worst_covered_section(outputs, weights, store, cfg, level)
    seconds["worst_covered"] = time.perf_counter() - start
    start = time.perf_counter()
    folder = Path(apps_dir) if apps_dir is not None else outputs.project / cfg.apps
    panels = apps.app_sections(folder, store, cfg.max_app_faces, cfg.max_app_image_bytes)
    seconds["apps"] = time.perf_counter() - start

    table = quality.load_table(outputs.project / cfg.quality_table)
    mean_faces = int(np.mean(store.faces)) if store.faces else 0
    versions = "".join(page.key_value_table(title, values) for title, values in outputs.versions.items())
    protocol = page.key_value_table("evaluation protocol", metrics.get("protocol") or {})
    sections = [
        page.section(
            "Metrics",
            "Chamfer-distance MMD / COV / 1-NNA against the test split, beside the "
            "yardsticks: the training set used as the generator (an oracle memorizer) and the "
            "single-MLP baseline when it was evaluated.",
            page.metrics_table(metrics),
            "metrics",
        ),
        *([quality.quality_section(table)] if table is not None else []),
        page.legend(part_names, weights.layout.n_experts),
        shapes,
        worst,
        *panels,
        page.section("Versions", "What these numbers were computed from.", versions + protocol, "versions"),
        page.section(
            "Display",
            f"Shapes re-meshed from their fields at {cfg.resolution}<sup>3</sup> for "
            f"display, coarser where a shape would exceed {cfg.max_faces} faces ({len(store.faces)} "
            f"meshes, {mean_faces} faces on average); the metrics used the evaluation's own "
            "resolution.",
            "",
            "display",
        ),
    ]
    run = f" · MLflow run {html.escape(outputs.run_id)}" if outputs.run_id else ""
    subtitle = (
        f"{html.escape(str(metrics.get('generator')))} · {html.escape(str(category))} · "
        f"{metrics.get('n_generated')} generated, {metrics.get('n_reference')} references{run} · "
        f"built {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    )
    text = page.page(
        f"shd evaluation report: {category}",
        subtitle,
        sections,
        store.blocks.values(),
        viewer_script(),
        cfg.viewer_px,
    )
    return text, store, seconds


def build_report(
    outputs: EvalOutputs,
    out: str | Path,
    cfg: ReportConfig = ReportConfig(),
    apps_dir: str | Path | None = None,
) -> ReportSummary:
    """Write the report for `outputs` to `out` (atomically) and say what it holds."""
    start = time.perf_counter()
    text, store, seconds = build_page(outputs, cfg, apps_dir)
    data = text.encode("utf-8")
    write_text(out, text)
    seconds["total"] = time.perf_counter() - start
    return ReportSummary(Path(out), store.n_viewers, len(store.blocks), len(data), store.faces, seconds)
