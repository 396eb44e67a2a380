"""The evaluation stage of record (REFERENCE.md): generated weights -> meshes -> clouds -> MMD/COV/1-NNA.

References are the test split's ground-truth surface clouds. The generated set is whatever weights the
caller passes (a diffusion model's samples) or, while there is none, the fitted test-split weights:
their reconstructions are the upper bound a generator of this field could reach. Two yardsticks are
scored on the same references, so a number reads against what is reachable: the training set used as
the generator (an oracle memorizer) and the single-MLP baseline's reconstructions.

Its parts: options and paths in `shd.eval.config`, scoring in `shd.eval.scoring`, per-sample records in
`shd.eval.records`; their names are importable from here too (the stage's public surface).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from shd.atomic import write_json, write_text
from shd.data.sample_store import SampleSet
from shd.devices import resolve_device
from shd.errors import InputError
from shd.eval.chamfer import resolve_backend
from shd.eval.config import (  # noqa: F401 (re-exported: the stage's public surface)
    GENERATED_FORMAT,
    GENERATED_KEY,
    RECONSTRUCTION,
    SAMPLES_FORMAT,
    EvalPaths,
    EvaluateConfig,
)
from shd.eval.metrics import n_to_generate
from shd.eval.reconstruct import mesh_weights
from shd.eval.records import nn_csv, sample_records  # noqa: F401
from shd.eval.scoring import (  # noqa: F401
    Clouds,
    WeightEvaluation,
    baseline_row,
    cloud_metrics,
    evaluate_weight_vectors,
    reconstruction_ids,
    stage_category,
    surface_clouds,
    train_as_generator,
    train_as_generator_scored,
    training_pick,
)
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout
from shd.fields.weight_set import WeightSet
from shd.jsonio import json_ready
from shd.shards import write_shard


def n_to_sample(weight_dir: str | Path, sample_dir: str | Path, cfg: EvaluateConfig) -> tuple[str, int]:
    """(category, how many shapes a generator should sample): 1.1x the test references."""
    category = stage_category(WeightSet.open(weight_dir), cfg.category)
    n_ref = len(SampleSet.open(sample_dir).ids(split="test", category=category))
    return category, n_to_generate(n_ref, cfg.generate_factor)


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
