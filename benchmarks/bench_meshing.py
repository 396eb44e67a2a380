"""Meshing throughput (shapes/s), dense grid vs sparse (coarse-to-fine) on the same fields, and end to end.

Rerun on a GPU: `PYTHONPATH=src python benchmarks/bench_meshing.py --device cuda --out-dir $OUT`
(resolutions 128, 256 and 356, the reference's test resolution); on the CPU: `--device cpu` (64 and
128). Writes benchmarks/results/eval_meshing_<cpu|cuda>.json as it goes (and a copy in --out-dir) and
the `eval_meshing_<cpu|cuda>` section of BENCHMARKS.md; `--from-json FILE` only rewrites the section
from a results file measured elsewhere.

Fields: the reference-size semantic field (`moe_equal`: 4 experts, NeRF encoding with 4 frequencies,
hidden 60 x 3) with weights quickly fitted here to procedural airplanes (shd.fields.synthetic, the
fields engine's Adam for --fit-steps steps), so that the level set is a shape's surface, as in
evaluation, not the noise of random weights. Both paths run `shd.eval.meshing.mesh_batch` (grid,
marching cubes, arg-max face labels, copy to the host); each resolution checks that they give the
same meshes. End to end: DDIM-50 with the reference denoiser (`NET_PRESETS["reference"]`, untrained
weights: its cost is what counts) for a batch, then the sparse meshes of the fitted fields (untrained
samples are not shapes) and 2,048 surface points each. Needs torch and numpy (plus diffusers, for the
sampler's schedulers, in the end-to-end part only; no skimage, trimesh or scipy).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import RESULTS, adopt_results, cpu_caveat, machine, measured_on, table, write_section

from shd.eval.field_bounds import MoEField
from shd.eval.marching import march_bricks
from shd.eval.meshing import REFERENCE_LEVEL, mesh_batch
from shd.eval.pointclouds import sample_clouds
from shd.eval.sparse_grid import DEFAULT_SIZES, evaluate_band
from shd.fields import engine
from shd.fields.config import FIELD_PRESETS, OverfitConfig
from shd.fields.layout import make_layout
from shd.fields.moe import init_params
from shd.fields.synthetic import sample_shapes

FIELD = "moe_equal"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def fitted_flat(n: int, steps: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, float]:
    """(N, D) weights fitted to `n` procedural airplanes, and the final mean training loss."""
    field = FIELD_PRESETS[FIELD]
    cfg = OverfitConfig(
        field=field, points_per_step=2048, max_steps=steps, warmup_steps=20, schedule="plateau"
    )
    data = sample_shapes(
        "airplane",
        n,
        seed=seed,
        n_near=20_000,
        n_uniform=20_000,
        n_eval_near=8,
        n_eval_uniform=8,
        n_surface=8,
    )
    active = engine.new_active(
        [str(i) for i in range(n)],
        {k: data[k] for k in engine.TRAIN_KEYS},
        init_params(field, seed),
        cfg,
        device,
    )
    layout = make_layout(field)
    loss = torch.zeros(n)
    for _ in range(steps):
        loss = engine.train_step(active, *engine.draw_batch(active, cfg.points_per_step), layout, cfg)
    return active.flat.detach(), float(loss.mean())


def timed(fn, device: torch.device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def chamfer(a: np.ndarray, b: np.ndarray, device: torch.device, chunk: int = 4096) -> float:
    """Symmetric Chamfer distance (mean squared nearest-neighbour distance, both ways) of two vertex sets."""
    x, y = (torch.as_tensor(v, device=device, dtype=torch.float64) for v in (a, b))
    if not len(x) or not len(y):
        return 0.0 if len(x) == len(y) else float("inf")

    def directed(p: torch.Tensor, q: torch.Tensor) -> float:
        return float(torch.cat([torch.cdist(c, q).amin(dim=1) ** 2 for c in p.split(chunk)]).mean())

    return directed(x, y) + directed(y, x)


def same_meshes(dense: list, sparse: list, device: torch.device) -> dict[str, Any]:
    """How many shapes mesh identically (same faces, vertices within 1e-6), and the worst Chamfer distance
    between the vertex sets of the others (a value within a float's rounding of the level can fall on
    either side when two matmul kernels sum in different orders)."""
    identical, worst = 0, 0.0
    for d, s in zip(dense, sparse, strict=True):
        same = d.status == s.status and np.array_equal(d.faces, s.faces)
        same = same and (not len(d.vertices) or float(np.abs(d.vertices - s.vertices).max()) <= 1e-6)
        identical += same
        if not same:
            worst = max(worst, chamfer(d.vertices, s.vertices, device))
    return {
        "identical_shapes": identical,
        "identical": identical == len(dense),
        "max_chamfer_of_others": worst,
    }


def split(field: MoEField, batch: int) -> list[MoEField]:
    """The fields `batch` shapes at a time (a meshing call's batch)."""
    n = len(field.params["layer0.weight"])
    return [
        MoEField({k: v[s : s + batch] for k, v in field.params.items()}, field.config)
        for s in range(0, n, batch)
    ]


def mesh_all(parts: list[MoEField], resolution: int, chunk: int, device: torch.device, method: str) -> list:
    return [
        m
        for f in parts
        for m in mesh_batch(
            f,
            len(f.params["layer0.weight"]),
            resolution=resolution,
            chunk_points=chunk,
            device=device,
            method=method,
        )
    ]


def bench_resolution(
    field: MoEField, n: int, batch: int, resolution: int, chunk: int, device: torch.device
) -> dict:
    """Dense and sparse meshing of the same n fields at one resolution, `batch` shapes a call."""
    parts = split(field, batch)
    mesh_batch(parts[0], len(parts[0].params["layer0.weight"]), resolution=32, device=device)  # warm-up
    sparse, sparse_s = timed(lambda: mesh_all(parts, resolution, chunk, device, "sparse"), device)
    dense, dense_s = timed(lambda: mesh_all(parts, resolution, chunk, device, "dense"), device)
    out = {
        "resolution": resolution,
        "shapes": n,
        "batch": batch,
        "dense_seconds": dense_s,
        "sparse_seconds": sparse_s,
        "dense_shapes_per_s": n / dense_s,
        "sparse_shapes_per_s": n / sparse_s,
        "speedup": dense_s / sparse_s,
        "ok": sum(m.ok for m in sparse),
        "mean_faces": float(np.mean([len(m.faces) for m in sparse])),
        "mean_bricks": float(np.mean([m.meta.get("bricks", 0) for m in sparse])),
        **same_meshes(dense, sparse, device),
        **sparse_stages(parts[0], resolution, chunk, device),
    }
    print(out, flush=True)
    return out


def sparse_stages(field: MoEField, resolution: int, chunk: int, device: torch.device) -> dict[str, float]:
    """Where the sparse path's time goes, on one batch: bounds + points (evaluate_band), marching cubes;
    and how much of the grid it touched (boxes bounded, points evaluated, per shape)."""
    nb = len(field.params["layer0.weight"])
    band, band_s = timed(
        lambda: evaluate_band(field, nb, resolution, REFERENCE_LEVEL, DEFAULT_SIZES, chunk, device), device
    )
    shapes = [band.of(b) for b in range(nb)]
    _, march_s = timed(
        lambda: [march_bricks(v, o, resolution, REFERENCE_LEVEL) for v, o in shapes if len(v)], device
    )
    return {
        "band_seconds_per_shape": band_s / nb,
        "march_seconds_per_shape": march_s / nb,
        "boxes_bounded_per_shape": band.boxes_bounded / nb,
        "points_per_shape": band.points / nb,
        "points_share_of_grid": band.points / nb / resolution**3,
    }


def bench_end_to_end(
    field: MoEField, n: int, batch: int, resolution: int, chunk: int, device: torch.device
) -> dict:
    """DDIM-50 with the reference denoiser for n shapes in one batch (the net is latency-bound at small
    batches), sparse meshes `batch` shapes a call, 2,048 points each. Imported here: the sampler needs
    diffusers (its schedulers), the meshing figures do not."""
    from shd.diffusion.config import NET_PRESETS, ScheduleConfig
    from shd.diffusion.denoiser import Denoiser
    from shd.diffusion.normalization import Normalizer
    from shd.diffusion.sampler import WeightSampler
    from shd.diffusion.schedule import Schedule
    from shd.diffusion.tokens import TokenLayout

    layout = make_layout(FIELD_PRESETS[FIELD])
    net = Denoiser(NET_PRESETS["reference"], TokenLayout(layout))
    norm = Normalizer(torch.zeros(layout.dim), torch.ones(layout.dim))
    sampler = WeightSampler(net, Schedule(ScheduleConfig()), norm, FIELD_PRESETS[FIELD], (), device)
    sampler.sample(n, steps=2)  # warm-up
    _, sample_s = timed(lambda: sampler.sample(n, steps=50), device)
    parts = split(field, batch)
    meshes, mesh_s = timed(lambda: mesh_all(parts, resolution, chunk, device, "sparse"), device)
    clouds, cloud_s = timed(lambda: sample_clouds(meshes, 2048), device)
    total = sample_s + mesh_s + cloud_s
    out = {
        "shapes": n,
        "resolution": resolution,
        "ddim50_seconds": sample_s,
        "mesh_seconds": mesh_s,
        "points_seconds": cloud_s,
        "seconds": total,
        "clouds": len(clouds.index),
        "end_to_end_shapes_per_s": n / total,
    }
    print(out, flush=True)
    return out


def section(r: dict[str, Any]) -> str:
    """BENCHMARKS.md section of an eval_meshing results file."""
    m = r["machine"]
    cuda = torch.device(r["device"]).type == "cuda"
    where, host = measured_on(m, cuda, "host CPU")
    lines = [
        f"## Meshing throughput on {where} (`benchmarks/bench_meshing.py`)",
        "",
        f"Measured on {where}{host}, torch {m.get('torch')}, {r['date']}. Fields: the reference-size "
        f"semantic field ({FIELD}: 4 experts, NeRF encoding with 4 frequencies, hidden 60 x 3) fitted "
        f"here for {r['fit_steps']} Adam steps to {r['shapes']} procedural airplanes (final training loss "
        f"{r['fit_loss']:.3f}). Both paths run `mesh_batch` end to end (grid, torch marching cubes on "
        f"`{r['device']}`, arg-max face labels, copy to the host), {r['batch']} shapes a call, same fields, "
        "same run. Dense: the full grid (the oracle). Sparse: coarse-to-fine bricks (32, 16, 8, 4, 2 "
        "cells) kept by the interval bound of the MLP (provable, shd.eval.field_bounds: no tuned margin, so "
        "one-voxel-thin parts stay), then their points only. 'identical': same faces, vertices within 1e-6 "
        "(else the Chamfer distance of the vertex sets). "
        "Marching cubes is shd's own torch table (shd.eval.mc_tables), not scikit-image's: the same vertices "
        "(linear interpolation on the same crossing edges, tested), triangles that differ only in ambiguous "
        "cells (inside corners kept apart on a face, where Lewiner's asymptotic decider looks at values) and "
        "in how a cell's polygon is split; enclosed volumes agree within 0.1% in the tests.",
        "",
    ]
    if not cuda:
        lines += [cpu_caveat(r, m), ""]
    elif r.get("note"):
        lines += [r["note"], ""]
    rows = [
        [
            f"{x['resolution']}^3",
            f"{x['dense_shapes_per_s']:.3g}",
            f"{x['sparse_shapes_per_s']:.3g}",
            f"{x['speedup']:.1f}x",
            f"{x['ok']} / {x['shapes']}",
            f"{x['mean_faces']:,.0f}",
            f"{x['mean_bricks']:,.0f}",
            f"{x['identical_shapes']} / {x['shapes']}"
            + ("" if x["identical"] else f" (others: Chamfer <= {x['max_chamfer_of_others']:.2g})"),
        ]
        for x in r["runs"]
    ]
    header = [
        "resolution",
        "dense shapes/s",
        "sparse shapes/s",
        "speed-up",
        "meshed",
        "mean faces",
        "mean bricks (2^3 cells)",
        "identical",
    ]
    lines += [table(header, rows), ""]
    if all("band_seconds_per_shape" in x for x in r["runs"]):
        rows = [
            [
                f"{x['resolution']}^3",
                f"{x['band_seconds_per_shape'] * 1e3:.3g}",
                f"{x['march_seconds_per_shape'] * 1e3:.3g}",
                f"{x['boxes_bounded_per_shape']:,.0f}",
                f"{x['points_per_shape']:,.0f} ({x['points_share_of_grid']:.2%})",
            ]
            for x in r["runs"]
        ]
        header = [
            "resolution",
            "bounds + points (ms / shape)",
            "marching cubes (ms / shape)",
            "boxes bounded",
            "points evaluated (share of grid)",
        ]
        lines += ["Sparse stages, on one batch (per shape):", "", table(header, rows), ""]
    e = r.get("end_to_end")
    if e:
        lines += [
            "End to end (DDIM-50 with the reference denoiser, untrained; sparse meshes of the fitted fields "
            f"at {e['resolution']}^3; 2,048 surface points each), {e['shapes']} shapes: "
            f"**{e['end_to_end_shapes_per_s']:.3g} shapes/s** (sampling {e['ddim50_seconds']:.2f} s, "
            f"meshing {e['mesh_seconds']:.2f} s, points {e['points_seconds']:.2f} s).",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--resolutions", type=int, nargs="+", default=None, help="default 128 256 356 (CUDA), 64 128 (CPU)"
    )
    ap.add_argument(
        "--shapes",
        type=int,
        default=None,
        help="fields meshed per resolution and end to end (default 64 CUDA, 2 CPU)",
    )
    ap.add_argument("--batch", type=int, default=None, help="shapes per meshing call (default 8 CUDA, 2 CPU)")
    ap.add_argument(
        "--fit-steps", type=int, default=None, help="Adam steps of the fields (default 1000 CUDA, 300 CPU)"
    )
    ap.add_argument("--chunk-points", type=int, default=2**18)
    ap.add_argument("--no-end-to-end", action="store_true")
    ap.add_argument("--e2e-resolution", type=int, default=None, help="default 356 (CUDA), 128 (CPU)")
    ap.add_argument("--out-dir", default=None, help="also write the results JSON here")
    ap.add_argument("--note", help="context stored with the results and shown in the section")
    ap.add_argument("--from-json", help="only rewrite the BENCHMARKS.md section from this results file")
    args = ap.parse_args()
    if args.from_json:
        r = adopt_results(args.from_json)
        if args.note:
            r["note"] = args.note
        write_section(r["benchmark"], section(r))
        print(f"wrote the {r['benchmark']} section of BENCHMARKS.md")
        return
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    resolutions = args.resolutions or ([128, 256, 356] if cuda else [64, 128])
    n = args.shapes or (64 if cuda else 2)
    batch = min(n, args.batch or (8 if cuda else 2))
    steps = args.fit_steps or (1000 if cuda else 300)
    name = f"eval_meshing_{device.type}"
    r: dict[str, Any] = {
        "benchmark": name,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg(),
        "shapes": n,
        "batch": batch,
        "fit_steps": steps,
        "level": REFERENCE_LEVEL,
        "runs": [],
    }
    if args.note:
        r["note"] = args.note
    paths = [RESULTS / f"{name}.json"] + ([Path(args.out_dir) / f"{name}.json"] if args.out_dir else [])

    def save() -> None:
        r["load_average_after"] = os.getloadavg()
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(r, indent=2) + "\n")

    t0 = time.perf_counter()
    flat, r["fit_loss"] = fitted_flat(n, steps, device)
    r["fit_seconds"] = time.perf_counter() - t0
    print(f"fitted {n} airplanes in {r['fit_seconds']:.1f} s (loss {r['fit_loss']:.3f})", flush=True)
    field = MoEField.from_flat(flat, make_layout(FIELD_PRESETS[FIELD]), FIELD_PRESETS[FIELD], device)
    for res in resolutions:
        run = bench_resolution(field, n, batch, res, args.chunk_points, device)
        r["runs"].append(run)
        r[f"sparse_shapes_per_s_{res}"] = run["sparse_shapes_per_s"]
        r[f"dense_shapes_per_s_{res}"] = run["dense_shapes_per_s"]
        save()
    if not args.no_end_to_end:
        e2e_res = args.e2e_resolution or (356 if cuda else 128)
        r["end_to_end"] = bench_end_to_end(field, n, batch, e2e_res, args.chunk_points, device)
        r["end_to_end_shapes_per_s"] = r["end_to_end"]["end_to_end_shapes_per_s"]
        save()
    write_section(name, section(r))
    print(f"wrote {', '.join(map(str, paths))} and the {name} section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
