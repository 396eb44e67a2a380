"""Occupancy sampling of prepared shapes into a sharded sample set.

Per shape (REFERENCE.md): near-surface points (area-weighted surface samples + Gaussian jitter) and
uniform points in [-0.5, 0.5]^3, inside test by winding number, a part label for every inside point;
an independently drawn held-out set of the same mix for IoU; and a 2,048-point labelled surface cloud
for evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from shd.data.occupancy import occupancy_and_labels, sample_surface
from shd.data.sample_store import SampleEntry, write_manifest
from shd.data.sampling_config import SamplingConfig, shape_rng, shape_seed  # noqa: F401 (re-exported)
from shd.data.shape import PreparedShape
from shd.data.workers import worker_pool
from shd.shards import fingerprint, read_shard_meta, shard_matches, shard_name, write_shard


def _query_mix(
    shape: PreparedShape, n_near: int, n_uniform: int, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    surface, _ = sample_surface(shape.vertices, shape.faces, n_near, rng)
    near = surface + rng.normal(scale=sigma, size=surface.shape)
    uniform = rng.uniform(-0.5, 0.5, size=(n_uniform, 3))
    return np.concatenate([near, uniform], axis=0)


def _labelled_queries(
    shape: PreparedShape, n_near: int, n_uniform: int, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    queries = _query_mix(shape, n_near, n_uniform, sigma, rng)
    occ, labels = occupancy_and_labels(shape, queries, rng)
    return queries.astype(np.float32), occ.astype(np.uint8), labels.astype(np.int8)


def sample_shape(shape: PreparedShape, cfg: SamplingConfig) -> dict[str, np.ndarray]:
    """All sample arrays of one shape (see `shd.data.sample_store` for their meaning)."""
    pts, occ, lab = _labelled_queries(
        shape, cfg.n_near, cfg.n_uniform, cfg.sigma, shape_rng(cfg.seed, shape.shape_id, 0)
    )
    e_pts, e_occ, e_lab = _labelled_queries(
        shape, cfg.n_eval_near, cfg.n_eval_uniform, cfg.sigma, shape_rng(cfg.seed, shape.shape_id, 1)
    )
    surf, face_idx = sample_surface(
        shape.vertices, shape.faces, cfg.n_surface, shape_rng(cfg.seed, shape.shape_id, 2)
    )
    return {
        "points": pts,
        "occupancy": occ,
        "labels": lab,
        "eval_points": e_pts,
        "eval_occupancy": e_occ,
        "eval_labels": e_lab,
        "surface": surf.astype(np.float32),
        "surface_labels": np.asarray(shape.face_labels)[face_idx].astype(np.int8),
    }


Row = tuple[dict[str, str], dict[str, np.ndarray]]  # (shape_id/category/split, sample arrays)


def _header(shape: PreparedShape) -> dict[str, str]:
    return {"shape_id": shape.shape_id, "category": shape.category, "split": shape.split}


def _sample_file(path: Path, cfg: SamplingConfig) -> Row:
    shape = PreparedShape.load(path)
    return _header(shape), sample_shape(shape, cfg)


def _cpu_rows(chunks: list[list[Path]], cfg: SamplingConfig) -> Iterator[list[Callable[[], Row]]]:
    """Per pending shard, its shapes' results in order (callables: computed in-process or awaited)."""
    if cfg.n_workers() == 1 or sum(len(c) for c in chunks) <= 1:
        for chunk in chunks:
            yield [lambda p=p: _sample_file(p, cfg) for p in chunk]
        return
    with worker_pool(cfg.n_workers(), ["shd.data.sampling", "igl", "trimesh"]) as ex:
        futures: list[list[Future]] = [[ex.submit(_sample_file, p, cfg) for p in chunk] for chunk in chunks]
        try:
            for shard in futures:
                yield [f.result for f in shard]
        finally:
            for shard in futures:
                for f in shard:
                    f.cancel()


def _cuda_rows(chunks: list[list[Path]], cfg: SamplingConfig) -> Iterator[list[Callable[[], Row]]]:
    from shd.data.sampling_torch import sample_shapes_torch
    from shd.devices import resolve_device

    device = resolve_device(cfg.device, "params.yaml:sample.device")
    for chunk in chunks:
        shapes = [PreparedShape.load(p) for p in chunk]
        rows = sample_shapes_torch(shapes, cfg, device)
        done = [(_header(s), r) for s, r in zip(shapes, rows, strict=True)]
        yield [lambda d=d: d for d in done]


def sample_shapes(
    shape_paths: list[Path],
    out_dir: str | Path,
    cfg: SamplingConfig,
    categories: dict[str, list[str]],
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Sample every shape into shards under `out_dir`; finished shards are kept (resume).

    Pending shards are computed on the configured device: CUDA (a shard per batch) or the CPU's
    `workers` processes; per-shape random streams make the result independent of either. The manifest
    is written last, so a set without one is incomplete. Returns a summary dict.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = cfg.identity()
    ids = [p.stem for p in shape_paths]
    plan = []  # (name, chunk paths, chunk ids, fingerprint, reused)
    for start in range(0, len(shape_paths), cfg.shard_size):
        chunk = shape_paths[start : start + cfg.shard_size]
        chunk_ids = ids[start : start + cfg.shard_size]
        name = shard_name(start // cfg.shard_size)
        fp = fingerprint(config, chunk_ids, [p.stat().st_mtime_ns for p in chunk])
        plan.append((name, chunk, chunk_ids, fp, shard_matches(out_dir / name, fp, chunk_ids)))
    pending = [chunk for _, chunk, _, _, reused in plan if not reused]
    rows_of = (_cuda_rows if config["device"] == "cuda" else _cpu_rows)(pending, cfg)
    entries: list[SampleEntry] = []
    reused = 0
    for name, chunk, chunk_ids, fp, is_reused in plan:
        shapes_meta: list[dict]
        if is_reused:
            shapes_meta = read_shard_meta(out_dir / name)["shapes"]
            reused += 1
            if progress:
                progress(len(chunk))
        else:
            shapes_meta, rows = [], []
            for result in next(rows_of):
                header, arrays = result()
                rows.append(arrays)
                shapes_meta.append(
                    {**header, "occupancy_ratio": float(arrays["occupancy"][cfg.n_near :].mean())}
                )
                if progress:
                    progress(1)
            tensors = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
            write_shard(
                out_dir / name, tensors, {"fingerprint": fp, "shape_ids": chunk_ids, "shapes": shapes_meta}
            )
        entries += [SampleEntry(shard=name, row=i, **m) for i, m in enumerate(shapes_meta)]
    rows_of.close()
    stale = {p.name for p in out_dir.glob("shard-*.safetensors")} - {e.shard for e in entries}
    for name in stale:
        (out_dir / name).unlink()
    write_manifest(out_dir, config, categories, entries)
    return {"n_shapes": len(entries), "n_shards": -(-len(entries) // cfg.shard_size), "reused_shards": reused}
