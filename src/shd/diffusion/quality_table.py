"""The quality table's rows that need a trained model (issue 20): samplers, the single-MLP baseline,
noise baselines in the model's normalized space; scored by `shd.eval.quality_table`.

`build_quality_table` scores every row on the evaluate stage's test split and protocol and rewrites the
table file after each row, so a run cut short (a GPU command limit) resumes at the next row: rows
already in the file are kept when the protocol and the models are the same.

`train_single_baseline` trains the HyperDiffusion baseline (one MLP per shape, `field: single`) the same
way as the semantic model: the net, schedule and training options stored in the semantic model's export,
for the same number of optimizer steps at the same batch size (equal steps, not equal FLOPs: the single
field has 8 weight tokens to the semantic field's 32, so its steps are cheaper; both wall times are
recorded in the table).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shd.atomic import write_json
from shd.data.sample_store import SampleSet
from shd.devices import resolve_device
from shd.diffusion.api import load_model
from shd.diffusion.config import DiffusionConfig
from shd.diffusion.export import CONFIG_FILE, NORM_FILE, WEIGHTS_FILE, read_config
from shd.diffusion.sampler import WeightSampler
from shd.diffusion.train import train
from shd.errors import InputError
from shd.eval.config import EvaluateConfig
from shd.eval.metrics import n_to_generate
from shd.eval.quality_table import (
    NOISE_LEVELS,
    ROW_NAMES,
    TABLE_FORMAT,
    noisy_weights,
    protocol,
    score_train_as_generator,
    score_weights,
    table_document,
)
from shd.eval.scoring import stage_category, surface_clouds, training_pick
from shd.fields.weight_set import WeightSet

# row -> (method, steps) of the semantic model's sampler
MOE_SAMPLERS: dict[str, tuple[str, int]] = {
    "moe_ddpm500": ("ddpm", 500),
    "moe_ddim50": ("ddim", 50),
    "moe_ddim10": ("ddim", 10),
}
SINGLE_SAMPLER = ("ddim", 50)  # the evaluate stage's sampler (sample_generated's default)
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TableInputs:
    """What the table scores: the semantic weight set and model, the sample set (references, training
    clouds), and the single-MLP baseline's weight set and trained model (rows skipped when absent)."""

    weights: Path
    samples: Path
    model: Path  # the train stage's output (models/diffusion) or its model/ folder
    single_weights: Path | None = None
    single_model: Path | None = None
    rows: tuple[str, ...] = ROW_NAMES
    noise_levels: Mapping[str, float] = field(default_factory=lambda: dict(NOISE_LEVELS))
    guidance: float = 1.0


def model_folder(path: str | Path) -> Path:
    path = Path(path)
    return path / "model" if (path / "model").is_dir() else path


def model_hash(path: str | Path) -> str:
    """sha256 (12 hex) of an exported model's weights: a resumed table only keeps rows of the same model."""
    digest = hashlib.sha256()
    folder = model_folder(path)
    for name in (CONFIG_FILE, WEIGHTS_FILE, NORM_FILE):
        target = folder / name
        if not target.exists():
            raise InputError(folder, f"not an exported diffusion model (no {name})")
        digest.update(target.read_bytes())
    return digest.hexdigest()[:12]


def _sample(
    sampler: WeightSampler, n: int, category: str, method: str, steps: int, seed: int, guidance: float
):
    cat = category if sampler.conditional else None
    return sampler.sample(n, steps=steps, category=cat, seed=seed, guidance=guidance, method=method)


def _check_layout(sampler: WeightSampler, weights: WeightSet, model: Path) -> None:
    if sampler.layout.to_json() != weights.layout.to_json():
        raise InputError(
            model,
            f"trained on another weight layout (dim {sampler.layout.dim}) than {weights.root} "
            f"(dim {weights.layout.dim})",
        )


def _resumable(out: Path, key: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of an earlier run of the same table (same protocol and models), else none."""
    if not out.exists():
        return []
    try:
        old = json.loads(out.read_text())
    except json.JSONDecodeError:
        return []
    if old.get("format") != TABLE_FORMAT or old.get("resume_key") != json.loads(json.dumps(key)):
        return []
    return list(old.get("rows") or [])


def build_quality_table(
    inputs: TableInputs,
    cfg: EvaluateConfig,
    out: str | Path,
    *,
    stages: Mapping[str, float] | None = None,
    wall_seconds: float | None = None,
    commit: str | None = None,
    command: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score the rows of `inputs.rows` and write the table (with per-shape scatter points) to `out`.

    Every row: 1.1x the test references generated (or drawn from training), meshed at
    `cfg.resolution`, scored with `cfg.normalization`. Rows whose inputs are missing (no single-MLP
    model) are listed under `missing_rows`. Returns the table.
    """
    unknown = [r for r in inputs.rows if r not in ROW_NAMES]
    if unknown:
        raise InputError("quality table rows", f"unknown {unknown}; expected names from {ROW_NAMES}")
    out = Path(out)
    device = resolve_device(cfg.device, "evaluate.device")
    weights, samples = WeightSet.open(inputs.weights), SampleSet.open(inputs.samples)
    category = stage_category(weights, cfg.category)
    part_names = samples.categories.get(category)
    reference = surface_clouds(samples, samples.ids(split="test", category=category))
    train_clouds = surface_clouds(samples, samples.ids(split="train", category=category))
    if not len(reference):
        raise InputError(inputs.samples, f"no test-split {category} shapes: nothing to compare against")
    proto = protocol(cfg, len(reference), len(train_clouds))
    with_single = inputs.single_model is not None and inputs.single_weights is not None
    key = {
        "protocol": proto,
        "category": category,
        "weights": str(inputs.weights),
        "model": model_hash(inputs.model),
        "single_model": model_hash(inputs.single_model) if with_single else None,
        "noise_levels": dict(inputs.noise_levels),
        "guidance": inputs.guidance,
    }
    rows = [r for r in _resumable(out, key) if r["name"] in inputs.rows]
    n = n_to_generate(len(reference), cfg.generate_factor)
    sampler: WeightSampler | None = None

    def semantic() -> WeightSampler:
        nonlocal sampler
        if sampler is None:
            sampler = load_model(model_folder(inputs.model), device=device)
            _check_layout(sampler, weights, inputs.model)
        return sampler

    def score(name: str) -> dict[str, Any] | None:
        if name in MOE_SAMPLERS:
            method, steps = MOE_SAMPLERS[name]
            t0 = time.perf_counter()
            flat = _sample(semantic(), n, category, method, steps, cfg.seed, inputs.guidance)
            sample_s = time.perf_counter() - t0
            row = score_weights(
                name, flat, weights.layout, weights.field, reference, train_clouds, cfg, part_names
            )
            return {**row, "sampler": f"{method}-{steps}", "sample_seconds": sample_s}
        if name == "single":
            if not with_single:
                return None
            base = WeightSet.open(inputs.single_weights)
            single = load_model(model_folder(inputs.single_model), device=device)
            _check_layout(single, base, inputs.single_model)
            method, steps = SINGLE_SAMPLER
            t0 = time.perf_counter()
            flat = _sample(single, n, category, method, steps, cfg.seed, inputs.guidance)
            sample_s = time.perf_counter() - t0
            row = score_weights(name, flat, base.layout, base.field, reference, train_clouds, cfg)
            summary = read_config(model_folder(inputs.single_model)).get("summary") or {}
            return {
                **row,
                "sampler": f"{method}-{steps}",
                "sample_seconds": sample_s,
                "train_steps": summary.get("global_step"),
                "train_seconds": summary.get("seconds"),
            }
        if name == "train_as_generator":
            return score_train_as_generator(train_clouds, reference, cfg, part_names)
        sigma = float(inputs.noise_levels[name])
        ids = weights.ids(split="train", category=category, status="ok")
        if not ids:
            raise InputError(inputs.weights, f"no good train-split {category} fits to add noise to")
        pick = training_pick(len(ids), len(reference), cfg)
        flat = weights.load_flat([ids[i] for i in pick])
        offset = list(inputs.noise_levels).index(name) + 1  # each level its own noise draw
        noisy = noisy_weights(flat, semantic().normalizer.std.cpu(), sigma, cfg.seed + offset)
        row = score_weights(
            name, noisy, weights.layout, weights.field, reference, train_clouds, cfg, part_names
        )
        return {
            **row,
            "sigma": sigma,
            "noise_space": f"diffusion model normalization ({semantic().normalizer.mode})",
        }

    semantic_summary = read_config(model_folder(inputs.model)).get("summary") or {}
    extra = {
        "resume_key": key,
        "category": category,
        "semantic_model": {
            "train_steps": semantic_summary.get("global_step"),
            "train_seconds": semantic_summary.get("seconds"),
        },
    }

    def document() -> dict[str, Any]:
        return table_document(
            rows, proto, stages=stages, wall_seconds=wall_seconds, commit=commit, command=command, extra=extra
        )

    done = {r["name"] for r in rows}
    for name in inputs.rows:
        if name in done:
            continue
        t0 = time.perf_counter()
        row = score(name)
        if row is None:
            continue
        rows.append(row)
        write_json(out, document())
        if progress is not None:
            progress(
                {
                    "row": name,
                    "seconds": time.perf_counter() - t0,
                    **{k: row.get(k) for k in ("nna", "mmd", "cov")},
                }
            )
    table = document()
    write_json(out, table)
    return table


def train_single_baseline(
    single_weights: str | Path,
    semantic_model: str | Path,
    out_dir: str | Path,
    *,
    sample_dir: str | Path | None = None,
    tracking_root: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train the single-MLP baseline on `single_weights` as the semantic model was trained: its exported
    net, schedule and train options, stopped at its optimizer step count (equal steps, same batch).

    `overrides` ({"train": {...}}) changes options that do not alter the schedule (devices, precision,
    logging); max_steps and max_epochs are always taken from the semantic model. Returns train()'s summary.
    """
    config = read_config(model_folder(semantic_model))
    summary = config.get("summary") or {}
    steps = summary.get("global_step")
    if not isinstance(steps, int) or steps <= 0:
        raise InputError(
            model_folder(semantic_model), "its export records no optimizer step count (summary.global_step)"
        )
    values: dict[str, Any] = {
        "net": dict(config["net"]),
        "schedule": dict(config["schedule"]),
        "train": dict(config["train"]),
    }
    for section, changes in (overrides or {}).items():
        values.setdefault(section, {}).update(changes)
    values["train"].update({"max_steps": steps, "max_epochs": 10**9})
    return train(
        single_weights,
        DiffusionConfig.from_dict(values),
        out_dir,
        sample_dir=sample_dir,
        tracking_root=tracking_root,
        run_name="train-single-baseline",
    )


def describe(table: Mapping[str, Any]) -> Sequence[str]:
    """One line a row, for a console."""
    out = []
    for r in table["rows"]:
        ci = r.get("nna_ci95") or [None, None]
        out.append(
            f"{r['name']}: MMD {r.get('mmd')}, COV {r.get('cov')}, 1-NNA {r.get('nna')} {ci}, "
            f"{r.get('n_empty')}/{r.get('n_generated')} empty, novelty {r.get('novelty_median_cd')}"
        )
    return out
