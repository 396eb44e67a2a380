"""Data-stage throughput and inside-test libraries, on this machine's CPU.

Rerun: `.venv/bin/python benchmarks/bench_data.py [--shapes 16]`. Writes benchmarks/results/data.json
and the `data` section of BENCHMARKS.md.

Scale mode (`--device cpu|cuda`, issue 21): shapes/s of the `sample` work at the reference sizes
(100k + 100k points, 10k + 10k held out) for libigl on 1 core, on every core (worker processes), and on
the device path (winding numbers in Triton on CUDA), same procedural airplanes; then the three data
stages (prepare + validate + sample) for `--stages-shapes` airplanes, wall time. Writes
benchmarks/results/data_<device>.json (and a copy under --out-dir) and the `data_scale_<device>` section:
  python benchmarks/bench_data.py --device cuda --stages-shapes 4045 --out-dir $OUT

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

import numpy as np
import yaml
from common import ROOT, add_note, adopt_results, save_json, table, write_section

from shd.data.occupancy import sample_surface
from shd.data.prepare import PrepareConfig, prepare
from shd.data.sampling import SamplingConfig, sample_shape
from shd.data.shape import PreparedShape

SCALE_DOC = "data stages at scale"


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
    import igl
    import trimesh

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


def _reference_config(device: str) -> SamplingConfig:
    profile = yaml.safe_load((ROOT / "params-profiles" / "shapenet-gpu.yaml").read_text())["sample"]
    return SamplingConfig(**{**profile, "device": device, "workers": 0})


def _timed_pool(paths: list[Path], cfg: SamplingConfig, workers: int) -> float:
    """Seconds for `workers` single-threaded processes to sample every shape (pool started first)."""
    from shd.data.sampling import _sample_file
    from shd.data.workers import worker_pool

    with worker_pool(workers, ["shd.data.sampling"]) as ex:
        list(ex.map(len, [[0]] * workers))  # start the workers before the clock
        t0 = time.perf_counter()
        list(ex.map(_sample_file, paths, [cfg] * len(paths)))
        return time.perf_counter() - t0


def _timed_device(paths: list[Path], cfg: SamplingConfig, device) -> float:
    """Seconds for the device path to sample every shape, a shard (cfg.shard_size shapes) per batch;
    loading the files included, as in the stage. One small warm-up batch first (Triton compiles)."""
    import torch

    from shd.data.sampling_torch import sample_shapes_torch

    sample_shapes_torch([PreparedShape.load(paths[0])], cfg, device)
    torch.cuda.synchronize() if device.type == "cuda" else None
    t0 = time.perf_counter()
    for s in range(0, len(paths), cfg.shard_size):
        sample_shapes_torch([PreparedShape.load(p) for p in paths[s : s + cfg.shard_size]], cfg, device)
    return time.perf_counter() - t0


def _stages(n: int, work: Path, sample_cfg: SamplingConfig) -> dict:
    """prepare + validate + sample of n procedural airplanes with the GPU profile's settings, timed."""
    from shd.data.sampling import sample_shapes

    out: dict = {"n_shapes": n}
    profile = yaml.safe_load((ROOT / "params-profiles" / "shapenet-gpu.yaml").read_text())
    prep = {**profile["prepare"], "counts": {"airplane": n}, "workers": 0}
    if prep.get("split_sizes") and sum(prep["split_sizes"].values()) != n:
        prep["split_sizes"] = None  # the profile's exact split sizes fit its own count only
    prep_cfg = PrepareConfig(**prep)
    _, out["prepare_seconds"] = timed(prepare, prep_cfg, work / "prepared")
    index = json.loads((work / "prepared" / "index.json").read_text())
    kept = index
    try:
        from shd.data.validation import ValidationConfig, manifest_table, validate
    except ImportError as exc:
        out["validate_seconds"] = 0.0
        out["validate_note"] = f"validate not timed ({exc})"
        validate = None
    try:
        if validate is None:
            raise ModuleNotFoundError("skipped")
        val_cfg = ValidationConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in profile["validate"].items()}
        )
        import great_expectations  # noqa: F401

        from shd.data.validation import ValidationFailed

        t0 = time.perf_counter()
        try:
            validate(work / "prepared", work / "validated", work / "validation.json", val_cfg, work / "docs")
        except ValidationFailed as exc:  # the kept list is written first: sample what passed
            out["validate_note"] = f"validation failed ({exc}); the kept shapes were sampled"
        out["validate_seconds"] = time.perf_counter() - t0
        kept = json.loads((work / "validated" / "shapes.json").read_text())
    except ImportError:
        if validate is not None:
            _, seconds = timed(manifest_table, work / "prepared", index, val_cfg)
            out["validate_seconds"] = seconds
            out["validate_note"] = (
                "great_expectations not installed: timed the per-shape statistics table only (no suite run)"
            )
    paths = [work / "prepared" / s["file"] for s in kept["shapes"]]
    _, out["sample_seconds"] = timed(sample_shapes, paths, work / "samples", sample_cfg, kept["categories"])
    out["seconds"] = out["prepare_seconds"] + out["validate_seconds"] + out["sample_seconds"]
    return out


def bench_scale(args) -> dict:
    import os
    import shutil

    from shd.devices import resolve_device

    device = resolve_device(args.device, "--device")
    cores = os.cpu_count() or 1
    cfg = _reference_config(device.type)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_data_"))
    shapes_dir = work / "shapes"
    shapes_dir.mkdir(parents=True, exist_ok=True)
    n = max(args.cpu1_shapes, args.cpu_shapes, args.gpu_shapes if device.type == "cuda" else 0)
    paths = []
    try:
        from shd.data.procedural import generate_shape
    except ImportError as exc:
        raise SystemExit(
            f"bench_data: procedural shapes need manifold3d (pip install manifold3d): {exc}"
        ) from None
    for i in range(n):
        shape = generate_shape("airplane", i, 0)
        shape.save(shapes_dir / f"{shape.shape_id}.npz")
        paths.append(shapes_dir / f"{shape.shape_id}.npz")
    r: dict = {
        "config": {
            "n_near": cfg.n_near,
            "n_uniform": cfg.n_uniform,
            "n_eval_near": cfg.n_eval_near,
            "n_eval_uniform": cfg.n_eval_uniform,
            "shard_size": cfg.shard_size,
            "cores": cores,
        },
        "load_average_before": list(os.getloadavg()),
    }
    cpu_cfg = _reference_config("cpu")
    try:
        import igl  # noqa: F401
        import trimesh  # noqa: F401
    except ImportError as exc:
        r["cpu_note"] = f"libigl path not timed: {exc}"
        r["sample_cpu_1core_shapes_per_s"] = r["sample_cpu_allcores_shapes_per_s"] = None
        print(r["cpu_note"], flush=True)
    else:
        seconds = _timed_pool(paths[: args.cpu1_shapes], cpu_cfg, 1)
        r["sample_cpu_1core_shapes"] = args.cpu1_shapes
        r["sample_cpu_1core_shapes_per_s"] = args.cpu1_shapes / seconds
        print(f"libigl, 1 core: {r['sample_cpu_1core_shapes_per_s']:.3f} shapes/s", flush=True)
        seconds = _timed_pool(paths[: args.cpu_shapes], cpu_cfg, cores)
        r["sample_cpu_allcores_shapes"] = args.cpu_shapes
        r["sample_cpu_allcores_shapes_per_s"] = args.cpu_shapes / seconds
        r["cpu_speedup_allcores"] = r["sample_cpu_allcores_shapes_per_s"] / r["sample_cpu_1core_shapes_per_s"]
        print(f"libigl, {cores} cores: {r['sample_cpu_allcores_shapes_per_s']:.3f} shapes/s", flush=True)
    if device.type == "cuda":
        seconds = _timed_device(paths[: args.gpu_shapes], cfg, device)
        r["sample_gpu_shapes"] = args.gpu_shapes
        r["sample_gpu_shapes_per_s"] = args.gpu_shapes / seconds
        print(f"GPU: {r['sample_gpu_shapes_per_s']:.1f} shapes/s", flush=True)
    else:
        r["sample_gpu_shapes_per_s"] = None
    if args.stages_shapes:
        stages = _stages(args.stages_shapes, work / "stages", cfg)
        r["stages"] = stages
        r["data_stages_seconds"] = stages["seconds"]
        r["data_stages_n_shapes"] = stages["n_shapes"]
        print(f"stages: {stages}", flush=True)
    r["load_average_after"] = list(os.getloadavg())
    r["warp"] = (
        "not measured: the warp-lang 1.19.0 wheel is 149 MB (manylinux x86_64), over the 64 MiB that can be "
        "carried to the GPU machine"
    )
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return r


def scale_section(m: dict, kind: str) -> str:
    mach = m["machine"]
    where = mach.get("gpu", "no GPU") + f"; host CPU {mach.get('cpu')}, {mach.get('cores')} cores"
    cfg = m["config"]
    rows = [
        [
            f"sample, libigl, 1 core ({m['sample_cpu_1core_shapes']} shapes)",
            f"{m['sample_cpu_1core_shapes_per_s']:.3f} shapes/s",
        ],
        [
            f"sample, libigl, {cfg['cores']} worker processes ({m['sample_cpu_allcores_shapes']} shapes)",
            f"{m['sample_cpu_allcores_shapes_per_s']:.3f} shapes/s ({m['cpu_speedup_allcores']:.2f}x)",
        ],
    ]
    if m.get("sample_gpu_shapes_per_s"):
        rows.append(
            [
                f"sample, GPU path, Triton ({m['sample_gpu_shapes']} shapes)",
                f"{m['sample_gpu_shapes_per_s']:.1f} shapes/s",
            ]
        )
    if m.get("stages"):
        st = m["stages"]
        rows.append(
            [
                f"prepare + validate + sample, {st['n_shapes']} airplanes",
                f"{st['seconds']:.1f} s ({st['prepare_seconds']:.1f} + {st['validate_seconds']:.1f} + "
                f"{st['sample_seconds']:.1f})",
            ]
        )
    notes = [m["warp"] + "; Triton kept."] + ([m["cpu_note"] + "."] if m.get("cpu_note") else [])
    notes += [m["note"]] if m.get("note") else []
    if m.get("stages", {}).get("validate_note"):
        notes.append(m["stages"]["validate_note"] + ".")
    return (
        f"## Data stages at scale, {kind} (`benchmarks/bench_data.py --device {kind}`)\n\n{where}; load "
        f"average before / after {m['load_average_before'][0]:.1f} / {m['load_average_after'][0]:.1f}. "
        f"Reference sizes: {cfg['n_near'] // 1000}k + {cfg['n_uniform'] // 1000}k points + "
        f"{cfg['n_eval_near'] // 1000}k + {cfg['n_eval_uniform'] // 1000}k held out per shape, procedural "
        "airplanes, files loaded as in the stage.\n\n"
        + table(["what", "figure"], rows)
        + "\n\n"
        + " ".join(notes)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", type=int, default=16, help="shapes per category")
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--from-json", help="only rewrite the BENCHMARKS.md section from this results file")
    ap.add_argument("--device", help="scale mode (issue 21): cpu | cuda | auto")
    ap.add_argument("--cpu1-shapes", type=int, default=4, help="scale: shapes timed with libigl on 1 core")
    ap.add_argument("--cpu-shapes", type=int, default=None, help="scale: shapes on every core (4 per core)")
    ap.add_argument("--gpu-shapes", type=int, default=256, help="scale: shapes timed on the device path")
    ap.add_argument("--stages-shapes", type=int, default=0, help="scale: airplanes through the 3 stages")
    ap.add_argument("--work-dir", help="scale: where shapes and stage outputs go (default: a temp dir)")
    ap.add_argument("--out-dir", help="scale: also write the results JSON here")
    ap.add_argument("--note", help="scale, with --from-json: context stored with the results and shown")
    args = ap.parse_args()
    if args.device and args.from_json:
        m = adopt_results(args.from_json)
        kind = "cuda" if m["machine"].get("gpu") and m.get("sample_gpu_shapes_per_s") else "cpu"
        add_note(f"data_{kind}", m, args.note)
        write_section(f"data_scale_{kind}", scale_section(m, kind))
        return
    if args.device:
        import os

        args.cpu_shapes = args.cpu_shapes or 4 * (os.cpu_count() or 1)
        results = bench_scale(args)
        kind = "cuda" if results.get("sample_gpu_shapes_per_s") else "cpu"
        path = save_json(f"data_{kind}", results)
        if args.out_dir:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
            (Path(args.out_dir) / path.name).write_text(path.read_text())
        write_section(f"data_scale_{kind}", scale_section(json.loads(path.read_text()), kind))
        print(path.read_text())
        return
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        results.setdefault("config", {"shapes": 16, "queries": 100_000})
        write_section("data", section(results))
        return
    from shd.data.procedural import generate_shape

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
