"""Meshing throughput (shapes/s) with an MLP-sized field: grid evaluation, marching cubes, face labels.

Rerun: `PYTHONPATH=src python benchmarks/bench_meshing.py --device cuda` (default resolutions 256 and
356, the reference's test resolution). Writes the `meshing` entry of benchmarks/results/eval_<cpu|cuda>.json
and the `eval_meshing_<cpu|cuda>` section of BENCHMARKS.md (`--from-json FILE` only rewrites the section
from a results file, e.g. one measured on a lent GPU).

The field is a random semantic MLP of the reference's size (4 experts, NeRF encoding with 4 frequencies,
hidden 60 x 3; ~36k parameters a shape), evaluated the way shd.fields evaluates a batch (one baddbmm
per layer over shape x expert). It is written out here so the benchmark needs only torch, numpy and
scikit-image. Each expert gets a blob term so the level set is a multi-part surface with the MLP's
wrinkles, like a fitted shape, rather than empty.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import RESULTS, cpu_caveat, machine, measured_on, rewrite_eval_section, table, write_section
from skimage.measure import marching_cubes

from shd.eval.meshing import REFERENCE_LEVEL, evaluate_grid, iter_meshes, mesh_volume

N_FREQS, WIDTH, DEPTH, EXPERTS = 4, 60, 3, 4


def encode(x: torch.Tensor) -> torch.Tensor:
    freqs = 2.0 ** torch.arange(N_FREQS, device=x.device, dtype=x.dtype)
    scaled = x.unsqueeze(-2) * freqs.unsqueeze(-1)
    return torch.cat((x, torch.stack((scaled.sin(), scaled.cos()), dim=-2).flatten(-3)), dim=-1)


def random_field(n_shapes: int, seed: int, device: torch.device):
    """A batched FieldFn: points (B, P, 3) -> expert logits (B, P, 4)."""
    g = torch.Generator().manual_seed(seed)
    dims = [3 * (1 + 2 * N_FREQS)] + [WIDTH] * DEPTH + [1]
    layers = []
    for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
        w = torch.randn(n_shapes * EXPERTS, d_out, d_in, generator=g) * (2.0 / d_in) ** 0.5
        bias = torch.randn(n_shapes * EXPERTS, 1, d_out, generator=g) * 0.1
        layers.append((w.to(device), bias.to(device)))
    centres = (torch.rand(n_shapes, 1, EXPERTS, 3, generator=g) * 0.5 - 0.25).to(device)

    def field(points: torch.Tensor) -> torch.Tensor:
        b, p, _ = points.shape
        h = encode(points)
        h = h.unsqueeze(1).expand(b, EXPERTS, p, h.shape[-1]).reshape(b * EXPERTS, p, h.shape[-1])
        for k, (w, bias) in enumerate(layers):
            h = torch.baddbmm(bias, h, w.transpose(1, 2))
            if k < len(layers) - 1:
                h = torch.relu_(h)
        wrinkles = h.view(b, EXPERTS, p).transpose(1, 2)
        blob = 30.0 * (0.2 - (points.unsqueeze(2) - centres).norm(dim=-1))
        return blob + wrinkles

    return field


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_time(fn, repeats: int = 3):
    """(last result, median seconds): the first call at a new size pays one-off allocation costs."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def sweep_chunks(resolution: int, batch: int, device: torch.device) -> list[dict]:
    """Grid evaluation alone at several chunk sizes: the MLP's activations are B*E*P*60 floats a layer."""
    field = random_field(batch, 99, device)
    out = []
    for chunk in (2**14, 2**16, 2**18, 2**20):
        evaluate_grid(field, batch, 16, chunk, device)
        sync(device)
        t0 = time.perf_counter()
        evaluate_grid(field, batch, resolution, chunk, device)
        sync(device)
        out.append({"chunk_points": chunk, "grid_seconds_per_shape": (time.perf_counter() - t0) / batch})
        print(out[-1], flush=True)
    return out


def bench_resolution(resolution: int, batch: int, n_batches: int, chunk: int, device: torch.device) -> dict:
    fields = [random_field(batch, seed, device) for seed in range(n_batches + 1)]
    # stages, on the warm-up batch: grid evaluation; one shape through mesh_volume and through plain
    # scikit-image marching cubes of the full grid
    evaluate_grid(fields[0], batch, 32, chunk, device)
    sync(device)
    t0 = time.perf_counter()
    grid = evaluate_grid(fields[0], batch, resolution, chunk, device)
    sync(device)
    grid_s = (time.perf_counter() - t0) / batch
    mesh, masked_s = median_time(lambda v=grid[0]: mesh_volume(v))
    volume = grid[0].cpu().numpy()
    _, plain_s = median_time(lambda v=volume: marching_cubes(v, REFERENCE_LEVEL, gradient_direction="ascent"))
    del grid, volume
    # end to end, batches streamed (next grid on the GPU while this batch is meshed on the CPU)
    sync(device)
    t0 = time.perf_counter()
    results = [
        m
        for b in iter_meshes(
            ((f, batch) for f in fields[1:]), resolution=resolution, chunk_points=chunk, device=device
        )
        for m in b
    ]
    sync(device)
    seconds = time.perf_counter() - t0
    n = len(results)
    out = {
        "resolution": resolution,
        "batch": batch,
        "shapes": n,
        "seconds": seconds,
        "shapes_per_s": n / seconds,
        "ok": sum(m.ok for m in results),
        "mean_faces": float(np.mean([len(m.faces) for m in results])),
        "grid_seconds_per_shape": grid_s,
        "mesh_volume_seconds": masked_s,  # checks, crossing mask, crop, copy to host, masked marching cubes
        "marching_cubes_plain_seconds": plain_s,
        "faces_first_shape": len(mesh.faces),
    }
    print(out, flush=True)
    return out


def section(payload: dict[str, Any]) -> str:
    """BENCHMARKS.md section of the `meshing` entry of an eval results file."""
    r = payload["meshing"]
    m = r.get("machine") or payload.get("machine", {})
    cuda = torch.device(r["device"]).type == "cuda"
    where, host = measured_on(m, cuda, "marching cubes on its host CPU")
    lines = [
        f"## Meshing throughput on {where} (`benchmarks/bench_meshing.py`)",
        "",
        f"Measured on {where}{host}, torch {m.get('torch')}. What ran: random semantic MLP fields of "
        f"the reference's size ({EXPERTS} experts, NeRF encoding with {N_FREQS} frequencies, hidden "
        f"{WIDTH} x {DEPTH}), meshed end to end by `iter_meshes`: grid evaluation (chunks of "
        f"{r['chunk_points']:,} points), crop and face labels (arg-max expert at each face centroid) on "
        f"`{r['device']}`, marching cubes on the CPU, batches streamed (the next grid is evaluated "
        "while this batch is meshed). Stage timings: grid evaluation on one warm-up batch, marching "
        "cubes on one of its shapes (median of 3).",
        "",
    ]
    if not cuda:
        lines += [cpu_caveat(r, m), ""]  # with the note
    elif r.get("note"):
        lines += [r["note"], ""]
    rows = [
        [
            f"{x['resolution']}^3",
            x["batch"],
            r["device"],
            x["shapes"],
            f"{x['seconds']:.1f}",
            f"{x['shapes_per_s']:.3g}",
            f"{x['ok']} / {x['shapes']}",
            f"{x['mean_faces']:,.0f}",
            f"{x['grid_seconds_per_shape']:.3g}",
            f"{x['mesh_volume_seconds']:.3g}",
            f"{x['marching_cubes_plain_seconds']:.3g}",
        ]
        for x in r["runs"]
    ]
    header = [
        "resolution",
        "batch",
        "device",
        "shapes",
        "seconds",
        "shapes/s",
        "meshed",
        "mean faces",
        "grid eval (s / shape)",
        "mesh_volume (s, 1 shape)",
        "plain marching cubes (s, 1 shape)",
    ]
    lines += [table(header, rows), ""]
    if r.get("chunk_sweep"):
        res = max(x["resolution"] for x in r["runs"])
        rows = [[f"{c['chunk_points']:,}", f"{c['grid_seconds_per_shape']:.3f}"] for c in r["chunk_sweep"]]
        lines += [
            f"Grid evaluation alone at {res}^3 by chunk size (points per field call):",
            "",
            table(["chunk (points)", "grid eval (s / shape)"], rows),
        ]
    return "\n".join(lines)


def from_json(path: str, note: str | None = None) -> None:
    """Rewrite the section from an eval results file; its `meshing` entry is merged into results/."""
    print(f"wrote the {rewrite_eval_section(path, 'meshing', note, section)} section of BENCHMARKS.md")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--resolutions",
        type=int,
        nargs="+",
        default=None,
        help="default 256 356 on CUDA, 64 128 on CPU (a 356^3 grid is ~30 s a shape on 2 cores)",
    )
    ap.add_argument("--batch", type=int, default=None, help="shapes per field call (default 8 CUDA, 2 CPU)")
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--chunk-points", type=int, default=2**18)
    ap.add_argument("--sweep-chunks", action="store_true", help="time grid evaluation per chunk size")
    ap.add_argument("--out", default=None)
    ap.add_argument("--note", help="context stored with the results and shown in the section")
    ap.add_argument("--from-json", help="only rewrite the BENCHMARKS.md section from this results file")
    args = ap.parse_args()
    if args.from_json:
        from_json(args.from_json, args.note)
        return
    load_before = os.getloadavg()  # other jobs on a shared machine skew CPU figures: recorded
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    resolutions = args.resolutions or ([256, 356] if cuda else [64, 128])
    batch = args.batch or (8 if cuda else 2)
    sweep = sweep_chunks(max(resolutions), batch, device) if args.sweep_chunks else None
    runs = [bench_resolution(r, batch, args.batches, args.chunk_points, device) for r in resolutions]

    out = Path(args.out or RESULTS / f"eval_{device.type}.json")
    payload = json.loads(out.read_text()) if out.exists() else {}
    meshing = {
        "device": str(device),
        "chunk_points": args.chunk_points,
        "runs": runs,
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    if sweep:
        meshing["chunk_sweep"] = sweep
    if args.note:
        meshing["note"] = args.note
    payload.update({"machine": machine(), "meshing": meshing})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    write_section(f"eval_meshing_{device.type}", section(payload))
    for r in runs:
        print(
            f"{r['resolution']}^3: {r['shapes_per_s']:.2f} shapes/s ({r['ok']}/{r['shapes']} ok, "
            f"{r['mean_faces']:.0f} faces); grid {r['grid_seconds_per_shape']:.3f} s/shape, marching "
            f"cubes {r['mesh_volume_seconds']:.3f} s "
            f"(plain {r['marching_cubes_plain_seconds']:.3f})"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
