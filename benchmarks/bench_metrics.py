"""Chamfer distance matrices for MMD/COV/1-NNA: ours vs the reference's loop, same process, same clouds.

Rerun: `PYTHONPATH=src python benchmarks/bench_metrics.py --device cuda` (N=606 by default on CUDA,
64 on CPU). Writes the `metrics` entry of benchmarks/results/eval_<cpu|cuda>.json and the
`eval_metrics_<cpu|cuda>` section of BENCHMARKS.md (`--from-json FILE` only rewrites the section from a
results file, e.g. one measured on a lent GPU).

1-NNA needs three N x N matrices of 2,048-point clouds (generated-generated, generated-reference,
reference-reference). The reference loop (PointFlow-style, as the weight-space reference evaluates)
takes one sample at a time against batches of 16 references and builds every 2,048 x 2,048 distance
matrix through bmm; it is timed on `--ref-rows` samples and scaled to 3 N rows. Accuracy: our matrix
against float64 KD-tree distances on the same rows.
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

from shd.eval.chamfer import chamfer_matrix, resolve_backend


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def reference_dist_chamfer(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's batched Chamfer: full (n, n) Gram matrices through bmm, then min both ways."""
    xx = torch.bmm(a, a.transpose(2, 1))
    yy = torch.bmm(b, b.transpose(2, 1))
    zz = torch.bmm(a, b.transpose(2, 1))
    diag = torch.arange(a.shape[1], device=a.device)
    rx = xx[:, diag, diag].unsqueeze(1).expand_as(xx)
    ry = yy[:, diag, diag].unsqueeze(1).expand_as(yy)
    p = rx.transpose(2, 1) + ry - 2 * zz
    return p.min(1)[0], p.min(2)[0]


def reference_rows(samples: torch.Tensor, refs: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """CD of each sample against every reference, one sample at a time, references in batches."""
    rows = []
    for s in samples:
        row = []
        for start in range(0, len(refs), batch):
            r = refs[start : start + batch]
            dl, dr = reference_dist_chamfer(s[None].expand(len(r), -1, -1).contiguous(), r)
            row.append(dl.mean(dim=1) + dr.mean(dim=1))
        rows.append(torch.cat(row))
    return torch.stack(rows)


def make_clouds(n: int, points: int, seed: int) -> np.ndarray:
    """Anisotropic blobs normalized like the reference (unit std): timing does not depend on shape."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n, points, 3)) * rng.uniform(0.3, 1.5, size=(n, 1, 3))
    c -= c.mean(axis=1, keepdims=True)
    return (c / c.reshape(n, -1).std(axis=1)[:, None, None]).astype(np.float32)


def sweep_triton(gen: torch.Tensor, ref: torch.Tensor, device: torch.device) -> list[dict]:
    """One directed pass per tile configuration (compile excluded)."""
    from shd.eval._chamfer_triton import directed_chamfer

    lengths = torch.full((len(gen),), gen.shape[1], device=device)
    out = []
    for bx, by, warps in [(32, 64, 2), (64, 64, 4), (64, 128, 4), (128, 64, 4), (128, 128, 8), (64, 32, 2)]:
        try:

            def run(bx=bx, by=by, warps=warps):
                return directed_chamfer(gen, lengths, ref, lengths, bx, by, warps)

            run()
            _, seconds = timed(run, device)
            out.append({"block_x": bx, "block_y": by, "num_warps": warps, "seconds_one_pass": seconds})
        except Exception as exc:  # a config that does not compile is reported, not fatal
            out.append({"block_x": bx, "block_y": by, "num_warps": warps, "error": repr(exc)[:300]})
        print(out[-1], flush=True)
    return out


# the target: the three matrices of 1-NNA for N = 606 clouds of 2,048 points in <= 5 s on one H100
TARGET_N, TARGET_SECONDS = 606, 5.0
MATRICES = {
    "gen_gen": "generated x generated",
    "gen_ref": "generated x reference",
    "ref_ref": "reference x reference",
}


def _err(x: float) -> str:
    return f"{x:.1e}" if x else "0"


def section(payload: dict[str, Any]) -> str:
    """BENCHMARKS.md section of the `metrics` entry of an eval results file."""
    r = payload["metrics"]
    m = r.get("machine") or payload.get("machine", {})
    cuda = torch.device(r["device"]).type == "cuda"
    where, host = measured_on(m, cuda)
    n, rows_timed = r["n"], r["reference_rows_timed"]
    ref_each = r["reference_total_seconds_scaled"] / 3  # the loop does every matrix row by row alike
    lines = [
        f"## Chamfer matrices for MMD / COV / 1-NNA on {where} (`benchmarks/bench_metrics.py`)",
        "",
        f"Measured on {where}{host}, torch {m.get('torch')}. What ran: the three N x N Chamfer-distance "
        f"matrices 1-NNA needs, N = {n:,} clouds of {r['points']:,} points a set, with our "
        f"`chamfer_matrix` (backend `{r['backend']}`) and with the reference's loop (one sample at a "
        "time against batches of 16 references, every full distance matrix through bmm) on the same "
        f"clouds; the loop is timed on {rows_timed} rows and scaled to N rows a matrix.",
        "",
    ]
    if not cuda:
        lines += [cpu_caveat(r, m), ""]  # with the note
    elif r.get("note"):
        lines += [r["note"], ""]
    ours = r["ours_seconds"]
    rows = [
        [label, f"{ours[k]:.3f}", f"{ref_each:,.1f}", f"{ref_each / ours[k]:,.0f}x"]
        for k, label in MATRICES.items()
        if k in ours
    ]
    rows.append(
        [
            "all three",
            f"{r['ours_total_seconds']:.3f}",
            f"{r['reference_total_seconds_scaled']:,.1f}",
            f"{r['speedup']:,.0f}x",
        ]
    )
    lines += [
        table(
            [
                "matrix",
                "ours (s)",
                f"reference loop (s, scaled from {rows_timed} rows)",
                "ratio (reference / ours)",
            ],
            rows,
        ),
        "",
        f"Max relative error against float64 KD-tree distances on the same {rows_timed} rows: ours "
        f"{_err(r['ours_max_rel_error_vs_float64'])}, reference loop "
        f"{_err(r['reference_loop_max_rel_error_vs_float64'])}.",
        "",
    ]
    if r.get("torch_fallback_total_seconds_scaled"):
        lines += [
            f"Our torch fallback backend (no Triton), all three matrices: "
            f"{r['torch_fallback_total_seconds_scaled']:.1f} s (scaled from "
            f"{r['torch_fallback_rows_timed']} rows).",
            "",
        ]
    if cuda and n == TARGET_N:
        lines += [
            "Against the issue's target:",
            "",
            table(
                ["figure", "measured", "target", "met?"],
                [
                    [
                        f"three matrices, N = {TARGET_N}, on one H100"
                        + ("" if "H100" in where else f" (measured on {where})"),
                        f"{r['ours_total_seconds']:.2f} s",
                        f"<= {TARGET_SECONDS:.0f} s",
                        "yes" if r["ours_total_seconds"] <= TARGET_SECONDS else "no",
                    ]
                ],
            ),
            "",
        ]
    else:
        lines += [
            f"The issue's target (<= {TARGET_SECONDS:.0f} s for N = {TARGET_N} on one H100) does not "
            f"apply to this run (N = {n}, {where}).",
            "",
        ]
    if r.get("triton_sweep"):
        rows = [
            [
                t["block_x"],
                t["block_y"],
                t["num_warps"],
                f"{t['seconds_one_pass']:.3f}" if "seconds_one_pass" in t else "failed",
            ]
            for t in r["triton_sweep"]
        ]
        note = r.get("triton_sweep_note") or "seconds of one directed N x N pass each"
        lines += [
            f"Triton tile configurations ({note}):",
            "",
            table(["block x", "block y", "warps", "seconds"], rows),
        ]
    return "\n".join(lines)


def from_json(path: str, note: str | None = None) -> None:
    """Rewrite the section from an eval results file; its `metrics` entry is merged into results/."""
    print(f"wrote the {rewrite_eval_section(path, 'metrics', note, section)} section of BENCHMARKS.md")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=None, help="clouds per set (default 606 on CUDA, 64 on CPU)")
    ap.add_argument("--points", type=int, default=2048)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--ref-rows", type=int, default=None, help="samples the reference loop is timed on")
    ap.add_argument("--torch-rows", type=int, default=None, help="rows for timing the torch fallback")
    ap.add_argument("--sweep", action="store_true", help="time the Triton tile configurations too")
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
    n = args.n or (606 if cuda else 64)
    ref_rows = min(n, args.ref_rows or (32 if cuda else 4))
    backend = resolve_backend(args.backend, device)

    gen_np, ref_np = make_clouds(n, args.points, 0), make_clouds(n, args.points, 1)
    gen, ref = torch.from_numpy(gen_np).to(device), torch.from_numpy(ref_np).to(device)

    chamfer_matrix(gen[:4], ref[:4], device=device, backend=backend)  # warm-up: compile, allocate
    ours = {}
    total = 0.0
    matrices = {}
    for name, (a, b) in {"gen_gen": (gen, None), "gen_ref": (gen, ref), "ref_ref": (ref, None)}.items():
        matrices[name], seconds = timed(
            lambda a=a, b=b: chamfer_matrix(a, b, device=device, backend=backend), device
        )
        ours[name] = seconds
        total += seconds
        print(f"ours {name}: {seconds:.3f} s", flush=True)

    reference = reference_rows(gen[:1], ref[:16])  # warm-up
    reference, ref_seconds = timed(lambda: reference_rows(gen[:ref_rows], ref), device)
    ref_total = ref_seconds / ref_rows * 3 * n
    print(
        f"reference loop: {ref_seconds:.2f} s for {ref_rows} rows -> {ref_total:.1f} s for 3 matrices",
        flush=True,
    )

    exact = chamfer_matrix(gen_np[:ref_rows].astype(np.float64), ref_np.astype(np.float64), backend="kdtree")
    rel = lambda m: float(np.max(np.abs(m - exact) / exact))  # noqa: E731
    accuracy = {
        "ours_max_rel_error_vs_float64": rel(matrices["gen_ref"][:ref_rows]),
        "reference_loop_max_rel_error_vs_float64": rel(reference.double().cpu().numpy()),
    }
    print(accuracy, flush=True)

    result = {
        "device": str(device),
        "backend": backend,
        "n": n,
        "points": args.points,
        "ours_seconds": ours,
        "ours_total_seconds": total,
        "reference_rows_timed": ref_rows,
        "reference_seconds_measured": ref_seconds,
        "reference_total_seconds_scaled": ref_total,
        "speedup": ref_total / total,
        **accuracy,
    }
    if cuda and backend == "triton" and args.torch_rows:
        rows = min(n, args.torch_rows)
        chamfer_matrix(gen[:2], ref[:2], device=device, backend="torch")
        _, seconds = timed(lambda: chamfer_matrix(gen[:rows], ref, device=device, backend="torch"), device)
        result["torch_fallback_rows_timed"] = rows
        result["torch_fallback_total_seconds_scaled"] = seconds / rows * 3 * n
        print(f"torch fallback: {seconds:.2f} s for {rows} rows", flush=True)
    if cuda and backend == "triton" and args.sweep:
        result["triton_sweep"] = sweep_triton(gen, ref, device)

    result.update(
        {
            "machine": machine(),
            "threads": torch.get_num_threads(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }
    )
    if args.note:
        result["note"] = args.note
    out = Path(args.out or RESULTS / f"eval_{device.type}.json")
    payload = json.loads(out.read_text()) if out.exists() else {}
    payload.update({"machine": machine(), "metrics": result})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    write_section(f"eval_metrics_{device.type}", section(payload))
    print(f"ours {total:.2f} s vs reference loop {ref_total:.1f} s (x{ref_total / total:.0f}); wrote {out}")


if __name__ == "__main__":
    main()
