"""Data-stage throughput and inside-test libraries, on this machine's CPU.

Rerun: `.venv/bin/python benchmarks/bench_data.py [--shapes 16]`. Writes benchmarks/results/data.json
and the `data` section of BENCHMARKS.md.

- prepare: procedural shapes/s (generation + atomic npz write), airplanes and chairs;
- sample: shapes/s at the default params.yaml counts and at the reference 100k + 100k;
- inside tests on the same meshes and queries (half near-surface, half uniform): libigl fast winding
  number, libigl exact winding number, trimesh ray parity (Embree); on the watertight union and on
  the overlapping part soup. Ground truth: the exact winding number of the union.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import igl
import numpy as np
import trimesh
import yaml
from common import ROOT, save_json, table, write_section

from shd.data.occupancy import sample_surface
from shd.data.prepare import PrepareConfig, prepare
from shd.data.procedural import generate_shape
from shd.data.sampling import SamplingConfig, sample_shape


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def bench_prepare(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = PrepareConfig(counts={"airplane": n, "chair": n})
        _, seconds = timed(prepare, cfg, Path(tmp))
    return {"shapes": 2 * n, "seconds": seconds, "shapes_per_s": 2 * n / seconds}


def bench_sample(shapes, cfg: SamplingConfig) -> dict:
    t0 = time.perf_counter()
    for s in shapes:
        sample_shape(s, cfg)
    seconds = time.perf_counter() - t0
    return {
        "n_near": cfg.n_near,
        "n_uniform": cfg.n_uniform,
        "shapes": len(shapes),
        "seconds": seconds,
        "shapes_per_s": len(shapes) / seconds,
    }


def soup(shape):
    parts = [p for p in shape.parts if p is not None]
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    return (
        np.concatenate([p.vertices for p in parts]),
        np.concatenate([p.faces + o for p, o in zip(parts, offsets, strict=True)]),
    )


def bench_inside(shapes, n_queries: int) -> dict:
    methods = {
        "libigl fast winding number": lambda v, f, q: igl.fast_winding_number(v, f, q) > 0.5,
        "libigl exact winding number": lambda v, f, q: igl.winding_number(v, f, q) > 0.5,
        "trimesh ray parity (Embree)": lambda v, f, q: trimesh.Trimesh(v, f, process=False).contains(q),
    }
    stats = {(m, s): {"seconds": 0.0, "wrong": 0} for m in methods for s in ("union", "part soup")}
    total = 0
    for i, shape in enumerate(shapes):
        rng = np.random.default_rng(i)
        surf, _ = sample_surface(shape.vertices, shape.faces, n_queries // 2, rng)
        q = np.concatenate(
            [
                surf + rng.normal(scale=0.01, size=surf.shape),
                rng.uniform(-0.5, 0.5, (n_queries - len(surf), 3)),
            ]
        )
        truth = igl.winding_number(shape.vertices, shape.faces, q) > 0.5
        total += len(q)
        for surface, (v, f) in (("union", (shape.vertices, shape.faces)), ("part soup", soup(shape))):
            for name, fn in methods.items():
                got, seconds = timed(fn, v, f, q)
                stats[(name, surface)]["seconds"] += seconds
                stats[(name, surface)]["wrong"] += int((got != truth).sum())
    return {
        f"{m}, {s}": {"ms_per_shape": 1000 * v["seconds"] / len(shapes), "wrong_fraction": v["wrong"] / total}
        for (m, s), v in stats.items()
    }


def section(m: dict) -> str:
    """The BENCHMARKS.md section from a results dict (also used by --from-json)."""
    cfg = m["config"]
    rows = [
        ["prepare (procedural, generate + write)", f"{m['prepare']['shapes_per_s']:.1f} shapes/s", ""],
        [
            f"sample, default ({m['sample_default']['n_near'] // 1000}k + "
            f"{m['sample_default']['n_uniform'] // 1000}k points)",
            f"{m['sample_default']['shapes_per_s']:.2f} shapes/s",
            "",
        ],
        [
            "sample, reference (100k + 100k points)",
            f"{m['sample_reference']['shapes_per_s']:.2f} shapes/s",
            "",
        ],
    ]
    rows += [
        [
            f"inside test: {k.replace(' | ', ', ')}",
            f"{v['ms_per_shape']:.0f} ms / {cfg['queries'] // 1000}k points",
            f"{100 * v['wrong_fraction']:.3f}% wrong",
        ]
        for k, v in m["inside"].items()
    ]
    return (
        f"## Data stages (`benchmarks/bench_data.py`)\n\nCPU: {m['machine']['cpu']}, "
        f"{m['machine']['cores']} cores, no GPU; a shared machine, other jobs running. "
        f"{2 * cfg['shapes']} procedural shapes (half airplanes, half chairs). Inside-test ground truth: "
        "libigl's exact winding number on the watertight union.\n\n"
        + table(["what", "figure", "accuracy"], rows)
        + "\n\nKept: libigl's winding number, exact sum up to 5k faces (faster than the tree"
        " approximation on these small meshes), fast tree version above (large repaired real"
        " meshes). Ray parity (Embree) is fastest but wrong inside overlapping part soups, and"
        " needs the union first."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", type=int, default=16, help="shapes per category")
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--from-json", help="only rewrite the BENCHMARKS.md section from this results file")
    args = ap.parse_args()
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        results.setdefault("config", {"shapes": 16, "queries": 100_000})
        write_section("data", section(results))
        return
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["sample"]
    shapes = [generate_shape(c, i, 0) for c in ("airplane", "chair") for i in range(args.shapes)]
    default = SamplingConfig(**params)
    reference = SamplingConfig(**{**params, "n_near": 100_000, "n_uniform": 100_000})
    results = {
        "config": {"shapes": args.shapes, "queries": args.queries},
        "prepare": bench_prepare(args.shapes),
        "sample_default": bench_sample(shapes, default),
        "sample_reference": bench_sample(shapes[: max(2, len(shapes) // 4)], reference),
        "inside": bench_inside(shapes[:: max(1, len(shapes) // 8)], args.queries),
    }
    path = save_json("data", results)
    write_section("data", section(json.loads(path.read_text())))
    print(yaml.safe_dump(results, sort_keys=False))


if __name__ == "__main__":
    main()
