"""The overfit stage: fit every shape of a sample set into a weight set, resumable and scale-out ready.

Shapes are grouped into weight shards of `shard_size`; a shard whose fingerprint (fit options, initial
weights, the sample shards it was fitted from, its shape ids) matches is kept, so a rerun after a kill
refits only unfinished shards. Under Lightning Fabric each rank fits shards k with k % world == rank
on its own device, and rank 0 writes the manifest once every shard exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from shd.data.sample_store import SampleSet
from shd.errors import InputError
from shd.fields.config import OverfitConfig
from shd.fields.engine import TRAIN_KEYS, ShapeResult, fit_stream, memory_capacity
from shd.fields.layout import Layout, make_layout
from shd.fields.moe import init_params
from shd.fields.quality import heldout_iou
from shd.fields.weight_set import write_manifest, write_weight_shard
from shd.progress import task
from shd.shards import fingerprint, read_shard, read_shard_meta, shard_matches, shard_name, write_shard

INIT_FILE = "init.safetensors"
INIT_TRIES = 8
INIT_WAIT_S = 1800.0  # how long array-job shards i > 0 wait for shard 0's shared initialization
INIT_POLL_S = 2.0
EVAL_KEYS = ("eval_points", "eval_occupancy", "eval_labels")
Progress = Callable[[dict[str, Any]], None]


def _check_categories(samples: SampleSet, ids: list[str], config: OverfitConfig) -> dict[str, list[str]]:
    cats = {samples.entry(s).category for s in ids}
    categories = {c: samples.categories[c] for c in sorted(cats)}
    if config.field.semantic:
        for c, parts in categories.items():
            if len(parts) != config.field.n_experts:
                raise InputError(
                    "overfit.field.n_experts",
                    f"is {config.field.n_experts} but category {c} has {len(parts)} parts "
                    f"({', '.join(parts)}); a semantic field has one expert per part",
                )
    return categories


def _initial_weights(
    samples: SampleSet,
    ids: list[str],
    out_dir: Path,
    config: OverfitConfig,
    device: torch.device,
    fabric: Any | None,
    shard_index: int = 0,
    wait_s: float = INIT_WAIT_S,
) -> tuple[torch.Tensor, str]:
    """Shared initialization: from the seed, or the first shape's fit (kept in init.safetensors).

    If the first shape's fit fails (non-finite loss), the next shape is tried, up to `INIT_TRIES`.
    Only one process fits it (Fabric rank 0, or array-job shard 0); the others wait for its file, so
    every shard starts from the same weights (a second fit on another device could differ in the
    last bits, and the weight set would no longer share one initialization).
    """
    seed_init = init_params(config.field, config.seed)
    if config.init == "seed":
        return seed_init, fingerprint("seed", config.field, config.seed)
    candidates = ids[:INIT_TRIES]
    fp = fingerprint("first_shape", config.fit_fingerprint_fields(), candidates)
    path = out_dir / INIT_FILE
    rank0 = fabric.global_rank == 0 if fabric is not None else shard_index == 0

    def ready() -> bool:
        return path.exists() and read_shard_meta(path).get("fingerprint") == fp

    if not rank0 and fabric is None:  # an array job's shard i > 0: shard 0 writes the file
        deadline = time.monotonic() + wait_s
        while not ready():
            if time.monotonic() > deadline:
                raise InputError(
                    path,
                    f"shard 0 did not write the shared first_shape initialization within "
                    f"{wait_s:.0f} s; run shard 0 (or `init: seed`)",
                )
            time.sleep(INIT_POLL_S)
    if rank0 and not ready():
        reasons = []
        for shape_id in candidates:
            got: list[ShapeResult] = []
            fit_stream(
                [shape_id], lambda b: samples.load(b, TRAIN_KEYS), seed_init, config, device, 1, got.extend
            )
            if got[0].status == "ok":
                write_shard(
                    path, {"params": got[0].params.numpy()}, {"fingerprint": fp, "shape_ids": [shape_id]}
                )
                break
            reasons.append(f"{shape_id}: {got[0].reason}")
        else:
            raise InputError("overfit.init", f"first_shape: no fit succeeded ({'; '.join(reasons)})")
    if fabric is not None:
        fabric.barrier()
    return torch.from_numpy(read_shard(path, ["params"])[0]["params"]), fp


def _sample_fingerprints(samples: SampleSet, ids: list[str]) -> list[str]:
    shards = sorted({samples.entry(s).shard for s in ids})
    return [read_shard_meta(samples.root / s).get("fingerprint", s) for s in shards]


def fit_sample_set(
    sample_dir: str | Path,
    out_dir: str | Path,
    config: OverfitConfig,
    device: str | torch.device = "cpu",
    shard: tuple[int, int] | None = None,
    progress: Progress | None = None,
    fabric: Any | None = None,
    limit: int | None = None,
    category: str | None = None,
) -> dict[str, Any]:
    """Fit every shape of `config.splits` in the sample set; returns a summary dict.

    `shard=(i, n)` fits only weight shards k with k % n == i (array jobs); with `fabric`, rank and
    world size come from it and rank 0 writes the manifest after a barrier. Without either, or once
    every shard exists, the manifest is written and the summary holds the quality aggregates
    (`iou_mean`, `iou_part_mean`, `n_shapes`, `n_bad`); `progress` gets a dict per finished shard.
    `limit` fits only the first `limit` shapes of those splits (a fixed subset, e.g. for sweeps);
    `category` only that category's shapes (see `fit_per_category`).
    """
    t0 = time.perf_counter()
    samples = SampleSet.open(sample_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fabric is not None:
        shard, device = (fabric.global_rank, fabric.world_size), fabric.device
    device = torch.device(device)
    index, count = shard or (0, 1)
    ids = [s for split in config.splits for s in samples.ids(split=split, category=category)][:limit]
    if not ids:
        which = f" of category {category}" if category else ""
        raise InputError(f"{sample_dir}", f"no shapes{which} in splits {list(config.splits)}")
    categories = _check_categories(samples, ids, config)
    init, init_fp = _initial_weights(samples, ids, out_dir, config, device, fabric, index)
    groups = [ids[s : s + config.shard_size] for s in range(0, len(ids), config.shard_size)]
    names = [shard_name(k) for k in range(len(groups))]
    fit_fields = config.fit_fingerprint_fields()
    fps = [fingerprint(fit_fields, init_fp, _sample_fingerprints(samples, g)) for g in groups]
    mine = [k for k in range(len(groups)) if k % count == index]
    todo = [k for k in mine if not shard_matches(out_dir / names[k], fps[k], groups[k])]
    reused = len(mine) - len(todo)
    if todo:  # the set is about to change: a manifest's presence must keep meaning "complete"
        (out_dir / "manifest.json").unlink(missing_ok=True)
    parts = next(iter(categories.values())) if len(categories) == 1 else None
    layout = make_layout(config.field, parts)
    done_shapes = sum(len(groups[k]) for k in mine if k not in todo)
    total_shapes = sum(len(groups[k]) for k in mine)
    pending = {k: {} for k in todo}
    group_of = {s: k for k in todo for s in groups[k]}

    def on_done(results: list[ShapeResult]) -> None:
        nonlocal done_shapes
        advance_steps(sum(max(config.max_steps - r.steps, 0) for r in results))  # stopped early
        for r in results:
            pending[group_of[r.shape_id]][r.shape_id] = r
        for k in [k for k, got in pending.items() if len(got) == len(groups[k])]:
            _write_group(
                samples, out_dir / names[k], groups[k], pending.pop(k), layout, config, device, fps[k]
            )
            done_shapes += len(groups[k])
            if progress:
                progress(
                    {
                        "shard": names[k],
                        "done_shapes": done_shapes,
                        "total_shapes": total_shapes,
                        "elapsed_s": time.perf_counter() - t0,
                    }
                )

    n_points = samples.load(ids[:1], ("points",))["points"].shape[1]
    capacity = memory_capacity(config.field, n_points, config, device)
    fitting = [s for k in todo for s in groups[k]]
    with task("overfit", total=len(fitting) * config.max_steps, unit="shape-steps") as advance_steps:
        fit_stream(
            fitting,
            lambda b: samples.load(b, TRAIN_KEYS),
            init,
            config,
            device,
            capacity,
            on_done,
            parts,
            on_interval=lambda active: advance_steps(len(active) * config.check_every),
        )
    summary: dict[str, Any] = {
        "rank": index,
        "world": count,
        "fitted_shards": len(todo),
        "reused_shards": reused,
        "capacity": capacity,
        "seconds": time.perf_counter() - t0,
    }
    if fabric is not None:
        fabric.barrier()
    complete = all(shard_matches(out_dir / n, fp, g) for n, fp, g in zip(names, fps, groups, strict=True))
    if (fabric is None or fabric.global_rank == 0) and complete:
        for stale in {p.name for p in out_dir.glob("shard-*.safetensors")} - set(names):
            # array jobs finishing together both get here: the other may have removed it already
            (out_dir / stale).unlink(missing_ok=True)
        summary.update(write_manifest(out_dir, config, categories, names))
    return summary


def _write_group(
    samples: SampleSet,
    path: Path,
    ids: list[str],
    results: dict[str, ShapeResult],
    layout: Layout,
    config: OverfitConfig,
    device: torch.device,
    fp: str,
) -> None:
    """Held-out quality of a finished group, then its shard."""
    params = torch.stack([results[s].params for s in ids])
    held = {k: torch.as_tensor(v).to(device) for k, v in samples.load(ids, EVAL_KEYS).items()}
    iou, part_iou = heldout_iou(
        params.to(device).nan_to_num(),
        layout,
        config.field,
        held["eval_points"],
        held["eval_occupancy"],
        held["eval_labels"],
    )
    records = []
    for i, s in enumerate(ids):
        r, e = results[s], samples.entry(s)
        ok = r.status == "ok"
        records.append(
            {
                "shape_id": s,
                "category": e.category,
                "split": e.split,
                "fit_status": r.status,
                "reason": r.reason,
                "steps": r.steps,
                "loss": r.loss,
                "train_iou": r.train_iou,
                "iou": _num(iou[i]) if ok else None,
                "part_iou": [_num(p) for p in part_iou[i]] if ok else [],
            }
        )
    write_weight_shard(path, params, records, fp)


def _num(x: torch.Tensor) -> float | None:
    v = float(x)
    return v if v == v else None  # NaN (undefined IoU) -> None, JSON has no NaN


def fit_with_fabric(
    sample_dir: str | Path,
    out_dir: str | Path,
    config: OverfitConfig,
    accelerator: str = "auto",
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run `fit_sample_set` on every rank of a Lightning Fabric launch; returns rank 0's summary.

    Works launched programmatically (`strategy="ddp"` re-runs the command per rank, `"ddp_spawn"`
    spawns workers) and under torchrun (Fabric reads its environment). Ranks exchange no gradients,
    only a barrier: each fits its share of shards on its own device.
    """
    from lightning.fabric import Fabric

    multi = str(devices) not in ("1", "auto") or num_nodes > 1
    fabric = Fabric(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy or ("ddp" if multi else "auto"),
    )
    # plain values only: Fabric's spawn launcher walks the arguments and rejects frozen dataclasses
    return fabric.launch(_fabric_worker, str(sample_dir), str(out_dir), config.to_dict(), progress)


def _fabric_worker(
    fabric: Any, sample_dir: str, out_dir: str, config: dict[str, Any], progress: Progress | None
) -> dict[str, Any]:
    return fit_sample_set(sample_dir, out_dir, OverfitConfig(**config), progress=progress, fabric=fabric)


def fit_per_category(
    sample_dir: str | Path,
    out_root: str | Path,
    config: OverfitConfig,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Fit a multi-category sample set one category at a time into `out_root/<category>/`.

    A semantic field has one expert per part, and categories differ in part count (ShapeNetPart: 2 to
    6), so each category gets its own weight set with `n_experts` = its number of parts; a non-semantic
    field keeps its configured experts. Returns {category: that weight set's summary}.
    """
    samples = SampleSet.open(sample_dir)
    present = {e.category for e in samples.entries if e.split in config.splits}
    out: dict[str, dict[str, Any]] = {}
    for category in sorted(present):
        cfg = config
        if config.field.semantic:
            cfg = replace(config, field=replace(config.field, n_experts=len(samples.categories[category])))
        out[category] = fit_sample_set(
            sample_dir, Path(out_root) / category, cfg, device=device, progress=progress, category=category
        )
    return out
