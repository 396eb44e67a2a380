"""The `prepare` stage: produce prepared shapes from the configured source.

Sources: `procedural` (the embedded default, no files needed) or `shapenetpart` (an official
ShapeNetPart folder, optionally with ShapeNetCore meshes). Each shape is one atomic `.npz`; an
`index.json` lists them and every per-shape error, so one bad file never stops the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shd.atomic import write_json
from shd.data.categories import PROCEDURAL_CATEGORIES, get_category
from shd.data.shape import SPLITS, PreparedShape
from shd.data.workers import n_workers, worker_pool
from shd.errors import InputError

SOURCES = ("procedural", "shapenetpart")


@dataclass
class PrepareConfig:
    source: str = "procedural"
    counts: dict[str, int] = field(default_factory=lambda: {"airplane": 64})
    split_ratios: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    # exact shapes per split of each category instead of ratios (procedural source; the counts must equal
    # their sum), e.g. the reference's {train: 3237, val: 202, test: 606}; null: split_ratios decide
    split_sizes: dict[str, int] | None = None
    seed: int = 0
    shapenetpart_root: str | None = None
    meshes_root: str | None = None
    layout: str | None = None
    grid_resolution: int = 96
    center: str = "vertex_mean"
    repair: str = "winding_grid"  # mesh soups: winding_grid | manifold (BENCHMARKS.md real_shapes)
    workers: int = 0  # procedural source: processes generating shapes in parallel (0: every core)

    def __post_init__(self) -> None:
        n_workers(self.workers, "params.yaml:prepare.workers")
        if self.source not in SOURCES:
            raise InputError("params.yaml:prepare.source", f"got {self.source!r}, expected one of {SOURCES}")
        if set(self.split_ratios) != set(SPLITS):
            raise InputError(
                "params.yaml:prepare.split_ratios",
                f"keys {sorted(self.split_ratios)}, expected exactly {list(SPLITS)}",
            )
        if abs(sum(self.split_ratios.values()) - 1.0) > 1e-6 or min(self.split_ratios.values()) < 0:
            raise InputError("params.yaml:prepare.split_ratios", "must be >= 0 and sum to 1")
        for name, n in self.counts.items():
            get_category(name)
            if not isinstance(n, int) or n < 0:
                raise InputError(f"params.yaml:prepare.counts.{name}", f"got {n!r}, expected an integer >= 0")
        if self.split_sizes is not None:
            if self.source != "procedural":
                raise InputError(
                    "params.yaml:prepare.split_sizes",
                    "only for the procedural source (ShapeNetPart shapes keep their own split)",
                )
            from shd.data.procedural import exact_split_sizes

            for name, n in self.counts.items():
                if n:
                    exact_split_sizes(n, self.split_sizes, f"params.yaml:prepare.split_sizes (counts.{name})")
        if self.source == "procedural":
            bad = [c for c, n in self.counts.items() if n and c not in PROCEDURAL_CATEGORIES]
            if bad:
                raise InputError(
                    "params.yaml:prepare.counts",
                    f"the procedural source makes only {PROCEDURAL_CATEGORIES}, not {bad}",
                )
        elif not self.shapenetpart_root:
            raise InputError(
                "params.yaml:prepare.shapenetpart_root",
                "required when source is 'shapenetpart' (path to the ShapeNetPart folder)",
            )


def _generate(category: str, index: int, seed: int, split: str, shapes_dir: Path) -> dict[str, Any]:
    """One procedural shape, generated and written (in a worker); its index record."""
    from shd.data.procedural import generate_shape

    shape = generate_shape(category, index, seed, split)
    shape.save(shapes_dir / f"{shape.shape_id}.npz")
    return _record(shape)


def _record(shape: PreparedShape) -> dict[str, Any]:
    return {
        "shape_id": shape.shape_id,
        "category": shape.category,
        "split": shape.split,
        "source": shape.source,
        "file": f"shapes/{shape.shape_id}.npz",
    }


def _procedural(cfg: PrepareConfig, shapes_dir: Path) -> Iterator[tuple[str, Any]]:
    """(category, index record) of every procedural shape, in generation order, made by `workers`
    processes (each shape is a pure function of category, index and seed)."""
    from shd.data.procedural import assign_splits

    jobs = [
        (category, index, cfg.seed, split, shapes_dir)
        for category, n in cfg.counts.items()
        if n
        for index, split in enumerate(assign_splits(category, n, cfg.seed, cfg.split_ratios, cfg.split_sizes))
    ]
    workers = min(n_workers(cfg.workers, "params.yaml:prepare.workers"), max(len(jobs), 1))
    if workers == 1:
        for job in jobs:
            yield job[0], _generate(*job)
        return
    with worker_pool(workers, ["shd.data.prepare", "shd.data.procedural"]) as ex:
        futures = [ex.submit(_generate, *job) for job in jobs]
        try:
            for job, future in zip(jobs, futures, strict=True):
                yield job[0], future.result()
        finally:
            for future in futures:
                future.cancel()


def _iter_source(cfg: PrepareConfig, shapes_dir: Path) -> Iterator[tuple[str, Any]]:
    """(category, index record of a written shape, or per-shape error record), category by category."""
    if cfg.source == "procedural":
        yield from _procedural(cfg, shapes_dir)
        return
    from shd.data.shapenetpart import iter_shapenetpart

    for category, limit in cfg.counts.items():
        produced = 0
        for item in iter_shapenetpart(
            cfg.shapenetpart_root,
            category,
            meshes_root=cfg.meshes_root,
            layout=cfg.layout,
            split_ratios=cfg.split_ratios,
            seed=cfg.seed,
            grid_resolution=cfg.grid_resolution,
            center=cfg.center,
            repair=cfg.repair,
        ):
            if limit and produced >= limit:  # 0 means "all shapes of the category"
                break
            produced += 1
            if isinstance(item, PreparedShape):
                item.save(shapes_dir / f"{item.shape_id}.npz")
                item = _record(item)
            yield category, item


def prepare(
    cfg: PrepareConfig, out_dir: str | Path, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Write every shape of the source to `out_dir/shapes/` and an `index.json`; return a summary."""
    out_dir = Path(out_dir)
    shapes_dir = out_dir / "shapes"
    shapes_dir.mkdir(parents=True, exist_ok=True)
    shapes: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for category, item in _iter_source(cfg, shapes_dir):
        if isinstance(item, dict):
            shapes.append(item)
        else:
            errors.append(
                {
                    "shape_id": item.shape_id,
                    "category": category,
                    "path": str(item.path),
                    "reason": item.reason,
                }
            )
        if progress:
            progress(1)
    keep = {Path(s["file"]).name for s in shapes}
    for stale in shapes_dir.glob("*.npz"):
        if stale.name not in keep:
            stale.unlink()
    categories = {c: list(get_category(c).parts) for c in sorted({s["category"] for s in shapes})}
    config = asdict(cfg)
    del config["workers"]  # not what the shapes depend on
    write_json(
        out_dir / "index.json",
        {"config": config, "categories": categories, "shapes": shapes, "errors": errors},
    )
    by_category: dict[str, dict[str, int]] = {c: {"shapes": 0, "errors": 0} for c in cfg.counts}
    for rows, key in ((shapes, "shapes"), (errors, "errors")):
        for row in rows:
            by_category.setdefault(row["category"], {"shapes": 0, "errors": 0})[key] += 1
    return {"n_shapes": len(shapes), "n_errors": len(errors), "by_category": by_category}
