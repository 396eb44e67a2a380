"""The evaluation stage of record (REFERENCE.md): generated weights -> meshes -> clouds -> MMD/COV/1-NNA.

References are the test split's ground-truth surface clouds. The generated set is whatever weights the
caller passes (a diffusion model's samples) or, while there is none, the fitted test-split weights:
their reconstructions are the upper bound a generator of this field could reach. Two yardsticks are
scored on the same references, so a number reads against what is reachable: the training set used as
the generator (an oracle memorizer) and the single-MLP baseline's reconstructions.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch

from shd import paths
from shd.atomic import write_json, write_text
from shd.data.sample_store import SampleSet
from shd.devices import resolve_device
from shd.errors import InputError
from shd.eval.chamfer import BACKENDS, resolve_backend
from shd.eval.meshing import REFERENCE_LEVEL, MeshResult, status_counts
from shd.eval.metrics import (
    NNA_RESAMPLES,
    generation_metrics,
    n_to_generate,
    nearest_in,
    novelty,
    part_metrics,
)
from shd.eval.pointclouds import N_POINTS, NORMALIZATIONS, sample_clouds
from shd.eval.reconstruct import mesh_weights
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout
from shd.fields.weight_set import WeightSet
from shd.jsonio import json_ready
from shd.shards import write_shard

SAMPLES_FORMAT = "shd-eval-samples/1"
GENERATED_FORMAT = "shd-eval-generated/1"
GENERATED_KEY = "params"  # the (N, D) tensor of data/eval/generated.safetensors
RECONSTRUCTION = "test_reconstruction"
# generation_metrics' names -> the names of record in reports/eval.json
_RENAMES = {
    "n_generated": "n_evaluated",
    "1-nna": "nna",
    "1-nna_generated": "nna_generated",
    "1-nna_reference": "nna_reference",
    "1-nna_ci95": "nna_ci95",
}


@dataclass(frozen=True)
class EvaluateConfig:
    """params.yaml section `evaluate`. Defaults finish on a 2-core CPU; the protocol of record is
    resolution 356 (REFERENCE.md), which wants a GPU."""

    resolution: int = 64
    level: float = REFERENCE_LEVEL  # logit(0.8)
    n_points: int = N_POINTS
    normalization: str = "unit_std"
    generate_factor: float = 1.1
    batch_size: int = 8  # shapes meshed at once (their grids are held on the device)
    chunk_points: int = 2**15  # grid points per shape in one field call (bounds activations)
    device: str = "auto"
    backend: str = "auto"  # Chamfer backend: auto | triton | kdtree | torch
    seed: int = 0
    nna_resamples: int = NNA_RESAMPLES  # bootstrap resamples of the 1-NNA 95% interval (0: none)
    render_count: int = 16
    render_resolution: int = 64  # renders of 356^3 meshes take minutes: re-mesh the shown ones coarser
    category: str | None = None  # None: the weight set's first category
    baseline_weights: str | None = None  # weight set of the single-MLP baseline, or None

    def __post_init__(self) -> None:
        checks = [
            (self.resolution >= 2 and self.render_resolution >= 2, "resolution", "must be >= 2"),
            (self.n_points >= 1, "n_points", "must be >= 1"),
            (self.normalization in NORMALIZATIONS, "normalization", f"one of {NORMALIZATIONS}"),
            (self.generate_factor >= 1, "generate_factor", "must be >= 1"),
            (self.batch_size >= 1 and self.chunk_points >= 1, "batch_size", "sizes must be >= 1"),
            (self.render_count >= 0, "render_count", "must be >= 0"),
            (self.nna_resamples >= 0, "nna_resamples", "must be >= 0"),
            (self.backend in BACKENDS, "backend", f"one of {BACKENDS}"),
            (
                self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"),
                "device",
                "auto, cpu, cuda or cuda:<index>",
            ),
        ]
        for ok, key, problem in checks:
            if not ok:
                raise InputError(f"evaluate.{key}", f"{problem}, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class EvalPaths:
    """Where the stage writes; the metrics file is written last. `generated` (the weights evaluated) and
    `samples` (each one's mesh status and nearest reference / training shape, each reference's nearest
    generated CD) are kept so that the report shows what was scored without sampling again."""

    metrics: Path = paths.EVAL_JSON  # the stage writes its headline numbers to paths.EVAL_METRICS
    nn_cd: Path = paths.EVAL_NN_CD
    grid: Path = paths.EVAL_GRID
    generated: Path = paths.EVAL_DIR / "generated.safetensors"
    samples: Path = paths.EVAL_DIR / "samples.json"

    @classmethod
    def under(cls, root: str | Path) -> EvalPaths:
        return cls(**{f.name: Path(root) / f.default for f in fields(cls)})


@dataclass
class Clouds:
    """Point clouds (N, n, 3), with each point's part label (N, n) when known."""

    points: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    def take(self, index: Sequence[int] | np.ndarray) -> Clouds:
        index = np.asarray(index, dtype=np.int64)
        return Clouds(self.points[index], None if self.labels is None else self.labels[index])


class WeightEvaluation(TypedDict):
    metrics: dict[str, Any]  # counts, mmd/cov/nna, parts, novelty (JSON-ready after `json_ready`)
    meshes: list[MeshResult]  # one per weight vector, failed ones included (renders)
    # per scored cloud: index (into the vectors), nearest_reference_cd / _index, nearest_train_cd / _index;
    # per reference: reference_nearest_cd (CD to the nearest scored cloud)
    per_sample: dict[str, list]
    # per weight vector, meshed ones scored or not: nearest_train_cd / _index (NaN / -1 when not meshed)
    rows: dict[str, list]


def surface_clouds(samples: SampleSet, ids: list[str]) -> Clouds:
    """The ground-truth evaluation clouds (`surface`, `surface_labels`) of these shapes."""
    if not ids:
        return Clouds(np.zeros((0, 1, 3), np.float32), np.zeros((0, 1), np.int64))
    arrays = samples.load(ids, ("surface", "surface_labels"))
    return Clouds(arrays["surface"].astype(np.float32), arrays["surface_labels"].astype(np.int64))


def cloud_metrics(
    generated: Clouds,
    reference: Clouds,
    train: Clouds | None,
    cfg: EvaluateConfig,
    part_names: Sequence[str] | None,
    device: torch.device,
) -> tuple[dict, dict[str, list]]:
    """One generator's row: MMD/COV/1-NNA, per-part MMD/COV (labelled clouds), novelty (with `train`).

    Every generator goes through this one function, so rows compare. Returns (row, per-sample lists:
    `index` into `generated` of each evaluated cloud, its nearest reference and training cloud: CD and
    position; each reference's CD to the nearest evaluated cloud).
    """
    opts = {"normalization": cfg.normalization, "device": device, "backend": cfg.backend}
    report = generation_metrics(
        generated.points,
        reference.points,
        per_sample=True,
        nna_resamples=cfg.nna_resamples,
        seed=cfg.seed,
        **opts,
    )
    used = report.pop("generated_index")
    per_sample = {
        key: report.pop(key)
        for key in ("nearest_reference_cd", "nearest_reference_index", "reference_nearest_cd")
    }
    per_sample["index"] = used
    row = {_RENAMES.get(k, k): v for k, v in report.items()}
    evaluated = generated.take(used)
    row["parts"] = None
    if part_names and evaluated.labels is not None and reference.labels is not None:
        row["parts"] = part_metrics(
            evaluated.points,
            evaluated.labels,
            reference.points,
            reference.labels,
            n_parts=len(part_names),
            part_names=part_names,
            **opts,
        )["parts"]
    if train is not None:
        found = novelty(evaluated.points, train.points, **opts)
        per_sample["nearest_train_cd"] = found.pop("nearest_train_cd", [math.nan] * len(used))
        per_sample["nearest_train_index"] = found.pop("nearest_train_index", [-1] * len(used))
        row["novelty"] = found
    return row, per_sample


def evaluate_weight_vectors(
    flat: torch.Tensor,
    layout: Layout,
    field: FieldConfig,
    reference: Clouds,
    train: Clouds | None = None,
    *,
    cfg: EvaluateConfig = EvaluateConfig(),
    part_names: Sequence[str] | None = None,
) -> WeightEvaluation:
    """Decode weight vectors (N, D) to meshes and clouds and score them against `reference`.

    Failed meshes (NaN weights, empty or NaN fields, no area) are counted in `n_empty` and skipped.
    Part metrics need a semantic field with one expert per name in `part_names`.
    """
    device = resolve_device(cfg.device, "evaluate.device")
    meshes = mesh_weights(
        flat,
        layout,
        field,
        resolution=cfg.resolution,
        level=cfg.level,
        batch_size=cfg.batch_size,
        chunk_points=cfg.chunk_points,
        device=device,
    )
    sampled = sample_clouds(meshes, cfg.n_points, seed=cfg.seed)
    labelled = field.semantic and part_names is not None and field.n_experts == len(part_names)
    clouds = Clouds(sampled.points, sampled.labels if labelled else None)
    row, per_sample = cloud_metrics(clouds, reference, train, cfg, part_names if labelled else None, device)
    per_sample["index"] = sampled.index[per_sample["index"]].tolist()
    rows = {"nearest_train_cd": [math.nan] * len(flat), "nearest_train_index": [-1] * len(flat)}
    if train is not None:  # every meshed vector, scored or clipped: the report shows each by its neighbour
        cd, index = nearest_in(
            clouds.points, train.points, normalization=cfg.normalization, device=device, backend=cfg.backend
        )
        for r, c, i in zip(sampled.index.tolist(), cd.tolist(), index.tolist(), strict=True):
            rows["nearest_train_cd"][r], rows["nearest_train_index"][r] = c, i
    metrics = {
        "n_generated": len(flat),
        "n_empty": len(flat) - len(sampled.points),
        "mesh_status": {**status_counts(meshes), "zero_area": sampled.skipped.get("zero_area", 0)},
        **row,
    }
    return WeightEvaluation(metrics=metrics, meshes=meshes, per_sample=per_sample, rows=rows)


def training_pick(n_train: int, n_reference: int, cfg: EvaluateConfig) -> np.ndarray:
    """Which training shapes stand in for a generator's output: 1.1x the references (at most all of
    them), without replacement, seeded; the memorizer yardsticks all draw the same ones."""
    n = min(n_train, n_to_generate(n_reference, cfg.generate_factor))
    return np.random.default_rng(cfg.seed).choice(n_train, size=n, replace=False)


def train_as_generator_scored(
    train: Clouds, reference: Clouds, cfg: EvaluateConfig, part_names: Sequence[str] | None
) -> tuple[dict[str, Any], dict[str, list]]:
    """`train_as_generator`'s row and its per-sample lists (as `cloud_metrics` gives them)."""
    pick = training_pick(len(train), len(reference), cfg)
    row, per_sample = cloud_metrics(
        train.take(pick), reference, None, cfg, part_names, resolve_device(cfg.device, "evaluate.device")
    )
    return {"n_generated": len(pick), "n_empty": 0, **row}, per_sample


def train_as_generator(
    train: Clouds, reference: Clouds, cfg: EvaluateConfig, part_names: Sequence[str] | None
) -> dict[str, Any]:
    """Yardstick: ground-truth training clouds used as the generated set (1.1x the references, seeded).

    A generator that only memorized its training set scores this; novelty is left out (it is 0).
    """
    return train_as_generator_scored(train, reference, cfg, part_names)[0]


def stage_category(weights: WeightSet, wanted: str | None) -> str:
    """The category evaluated: the one asked for, else the weight set's first."""
    categories = list(weights.manifest["categories"])
    if not categories:
        raise InputError(weights.root / "manifest.json", "lists no categories")
    if wanted is None:
        return categories[0]
    if wanted not in categories:
        raise InputError("evaluate.category", f"'{wanted}' is not in the weight set ({categories})")
    return wanted


def reconstruction_ids(weights: WeightSet, category: str) -> list[str]:
    """Test-split shapes of `category` whose fit is good (status ok): the reconstruction set."""
    ids = weights.ids(split="test", category=category, status="ok")
    if not ids:
        raise InputError(weights.root, f"no test-split {category} shapes with a good fit (status ok)")
    return ids


def n_to_sample(weight_dir: str | Path, sample_dir: str | Path, cfg: EvaluateConfig) -> tuple[str, int]:
    """(category, how many shapes a generator should sample): 1.1x the test references."""
    category = stage_category(WeightSet.open(weight_dir), cfg.category)
    n_ref = len(SampleSet.open(sample_dir).ids(split="test", category=category))
    return category, n_to_generate(n_ref, cfg.generate_factor)


def baseline_row(
    path: str | Path | None,
    category: str,
    reference: Clouds,
    train: Clouds,
    cfg: EvaluateConfig,
    part_names: Sequence[str],
) -> dict[str, Any] | None:
    """Yardstick: the single-MLP baseline's test reconstructions (None when no baseline is configured)."""
    if path is None:
        return None
    base = WeightSet.open(path)
    flat = base.load_flat(reconstruction_ids(base, category))
    result = evaluate_weight_vectors(
        flat, base.layout, base.field, reference, train, cfg=cfg, part_names=part_names
    )
    return {"weights": str(path), **result["metrics"]}


def nn_csv(per_sample: dict[str, list], shape_ids: Sequence[str] | None) -> str:
    """DVC plot data: one row per evaluated shape, its CD to the nearest reference and training cloud."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sample", "generated_index", "shape_id", "nearest_reference_cd", "nearest_train_cd"])
    rows = zip(
        per_sample["index"], per_sample["nearest_reference_cd"], per_sample["nearest_train_cd"], strict=True
    )
    for k, (i, ref_cd, train_cd) in enumerate(rows):
        writer.writerow([k, i, shape_ids[i] if shape_ids else "", _num(ref_cd), _num(train_cd)])
    return out.getvalue()


def _num(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else ""


def sample_records(
    result: WeightEvaluation,
    ref_ids: Sequence[str],
    train_ids: Sequence[str],
    shape_ids: Sequence[str] | None,
) -> dict[str, Any]:
    """`data/eval/samples.json`: per generated vector its mesh status, whether it was scored, its nearest
    reference (scored ones) and nearest training shape (meshed ones) by id and CD; per reference its CD
    to the nearest scored sample and how many samples have it as their nearest reference."""
    per, rows = result["per_sample"], result["rows"]
    scored = {row: k for k, row in enumerate(per["index"])}
    generated = []
    for i, mesh in enumerate(result["meshes"]):
        k, t = scored.get(i), rows["nearest_train_index"][i]
        generated.append(
            {
                "index": i,
                "shape_id": shape_ids[i] if shape_ids else None,
                "mesh_status": mesh.status,
                "scored": k is not None,
                "nearest_reference": None
                if k is None
                else {"id": ref_ids[per["nearest_reference_index"][k]], "cd": per["nearest_reference_cd"][k]},
                "nearest_train": None if t < 0 else {"id": train_ids[t], "cd": rows["nearest_train_cd"][i]},
            }
        )
    nearest = np.asarray(per["nearest_reference_index"], np.int64)
    hits = np.bincount(nearest[nearest >= 0], minlength=len(ref_ids))  # -1: no usable reference
    references = [
        {"id": rid, "nearest_generated_cd": cd, "n_nearest_of": int(n)}
        for rid, cd, n in zip(ref_ids, per["reference_nearest_cd"], hits, strict=True)
    ]
    return json_ready({"format": SAMPLES_FORMAT, "generated": generated, "references": references})


def render_generated(
    path: Path,
    flat: torch.Tensor,
    layout: Layout,
    field: FieldConfig,
    result: WeightEvaluation,
    cfg: EvaluateConfig,
    part_names: Sequence[str] | None,
    title: str,
    shape_ids: Sequence[str] | None = None,
) -> None:
    """Part-coloured grid of the first `render_count` generated shapes, captioned with the CD to their
    nearest reference; re-meshed at `render_resolution` when that differs from the metrics' meshes."""
    from shd.eval.render import render_grid  # matplotlib only when rendering

    n = min(cfg.render_count, len(flat))
    meshes = result["meshes"][:n]
    if cfg.render_resolution != cfg.resolution:
        meshes = mesh_weights(
            flat[:n],
            layout,
            field,
            resolution=cfg.render_resolution,
            level=cfg.level,
            batch_size=cfg.batch_size,
            chunk_points=cfg.chunk_points,
            device=resolve_device(cfg.device, "evaluate.device"),
        )
    nearest = dict(
        zip(result["per_sample"]["index"], result["per_sample"]["nearest_reference_cd"], strict=True)
    )
    captions = []
    for i, scored in enumerate(result["meshes"][:n]):
        name = shape_ids[i] if shape_ids else f"#{i}"
        status = f"CD {nearest[i]:.3g}" if i in nearest else ("not scored" if scored.ok else scored.status)
        captions.append(f"{name}  {status}")
    render_grid(meshes, path, captions=captions, part_names=part_names, title=title)


def evaluate_stage(
    weight_dir: str | Path,
    sample_dir: str | Path,
    paths: EvalPaths = EvalPaths(),
    cfg: EvaluateConfig = EvaluateConfig(),
    generated: torch.Tensor | None = None,
    generator_name: str | None = None,
) -> dict[str, Any]:
    """Score a generated set (default: the test-split reconstructions) with its yardsticks; write the
    plot CSV, the render grid and, last, the metrics JSON (`shd.tracking.evaluation` logs them to MLflow).

    `generated` (N, D) must be in the weight set's layout. Returns the JSON-ready report.
    """
    t0 = time.perf_counter()
    weights, samples = WeightSet.open(weight_dir), SampleSet.open(sample_dir)
    category = stage_category(weights, cfg.category)
    part_names = samples.categories.get(category)
    ref_ids = samples.ids(split="test", category=category)
    if not ref_ids:
        raise InputError(sample_dir, f"no test-split {category} shapes: nothing to compare against")
    reference = surface_clouds(samples, ref_ids)
    train_ids = samples.ids(split="train", category=category)
    train = surface_clouds(samples, train_ids)
    shape_ids = None
    if generated is None:
        shape_ids = reconstruction_ids(weights, category)
        generated = weights.load_flat(shape_ids)
        generator_name = generator_name or RECONSTRUCTION
    elif generated.ndim != 2 or generated.shape[1] != weights.layout.dim:
        raise InputError(
            "generated weights",
            f"expected (N, {weights.layout.dim}) in the layout of {weight_dir}, got {tuple(generated.shape)}",
        )
    generator_name = generator_name or "generated"
    seconds: dict[str, float] = {}

    def timed(key: str, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds[key] = time.perf_counter() - start
        return out

    result = timed(
        "generated",
        evaluate_weight_vectors,
        generated,
        weights.layout,
        weights.field,
        reference,
        train,
        cfg=cfg,
        part_names=part_names,
    )
    yardsticks = {
        "train_as_generator": timed(
            "train_as_generator", train_as_generator, train, reference, cfg, part_names
        ),
        "single_baseline": timed(
            "single_baseline", baseline_row, cfg.baseline_weights, category, reference, train, cfg, part_names
        ),
    }
    device = resolve_device(cfg.device, "evaluate.device")
    report = json_ready(
        {
            "generator": generator_name,
            "category": category,
            **result["metrics"],
            "yardsticks": yardsticks,
            "protocol": {
                "resolution": cfg.resolution,
                "level": cfg.level,
                "n_points": cfg.n_points,
                "generate_factor": cfg.generate_factor,
                "seed": cfg.seed,
                "reference_split": "test",
                "reference_points": reference.points.shape[1],
                "n_train": len(train),
                "device": str(device),
                "backend": resolve_backend(cfg.backend, device),
            },
        }
    )
    write_text(paths.nn_cd, nn_csv(result["per_sample"], shape_ids))
    write_shard(
        paths.generated,
        {GENERATED_KEY: generated.detach().cpu().float().numpy()},
        {
            "format": GENERATED_FORMAT,
            "generator": generator_name,
            "category": category,
            "weights": str(weight_dir),
        },
    )
    write_json(
        paths.samples,
        {
            "generator": generator_name,
            "category": category,
            "weights": str(weight_dir),
            **sample_records(result, ref_ids, train_ids, shape_ids),
        },
    )
    if cfg.render_count:
        timed(
            "render",
            render_generated,
            paths.grid,
            generated,
            weights.layout,
            weights.field,
            result,
            cfg,
            part_names,
            f"{generator_name} ({category}): CD to the nearest reference, {cfg.normalization}",
            shape_ids,
        )
    report["seconds"] = {**seconds, "total": time.perf_counter() - t0}
    write_json(paths.metrics, report)  # last: its presence means the evaluation finished
    return report


def evaluate_generator(
    sample: Callable[[int, str, int], torch.Tensor],
    weight_dir: str | Path,
    sample_dir: str | Path,
    paths: EvalPaths = EvalPaths(),
    cfg: EvaluateConfig = EvaluateConfig(),
    generator_name: str = "diffusion",
) -> dict[str, Any]:
    """Score a generator given as `sample(n, category, seed) -> (n, D) weights`: it is asked for 1.1x
    the test references of the evaluated category (the stage of record and `shd evaluate` share this)."""
    category, n = n_to_sample(weight_dir, sample_dir, cfg)
    return evaluate_stage(
        weight_dir,
        sample_dir,
        paths,
        cfg,
        generated=sample(n, category, cfg.seed),
        generator_name=generator_name,
    )


def summary_line(report: dict[str, Any]) -> str:
    """One line of an evaluation report: the generator's MMD/COV/1-NNA beside the train-set yardstick."""
    base = report["yardsticks"]["train_as_generator"]
    return (
        f"evaluate [{report['generator']}, {report['category']}, {report['normalization']}]: "
        f"MMD {_fmt(report['mmd'])}, COV {_fmt(report['cov'])}, 1-NNA {_fmt(report['nna'])} "
        f"(95% CI {_ci(report.get('nna_ci95'))}) "
        f"on {report['n_evaluated']}/{report['n_generated']} shapes ({report['n_empty']} empty); "
        f"train as generator: MMD {_fmt(base['mmd'])}, 1-NNA {_fmt(base['nna'])}"
    )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _ci(interval: Sequence[float | None] | None) -> str:
    """A [low, high] interval as text; n/a when it was not computed."""
    if not interval or any(x is None for x in interval):
        return "n/a"
    return f"{interval[0]:.3f}-{interval[1]:.3f}"
