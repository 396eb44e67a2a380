"""Training batches of the diffusion stage: shd's device-resident batches vs a host DataLoader.

Rerun from the repository root:  python benchmarks/bench_batches.py [--device cuda]
Both paths come from `shd.diffusion.datamodule.WeightSetDataModule` over the same split (`on_device`
true: `DeviceBatches`, one index_select a batch where the split lives; false: a TensorDataset DataLoader,
0 workers, that stacks the batch row by row on the host), in one process. The split is the GPU profile's
size: 2,199 training vectors of the reference field (36,244 floats each). Timed: producing every batch
of one epoch and, on CUDA, having it on the device (the host path copies each batch there, as
Lightning does), synchronized at the end. Results: results/batches_<device>.json, section in
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from common import add_note, adopt_results, fmt, save_json, table, write_section

from shd.diffusion.datamodule import Split, WeightSetDataModule
from shd.fields.config import FIELD_PRESETS
from shd.fields.layout import make_layout

SHAPES = 2199  # train split of the GPU profile (2,749 shapes, 80%)


def epoch_seconds(split: Split, batch: int, on_device: bool, device: torch.device, repeat: int) -> float:
    """Best of `repeat` epochs: seconds to have every batch of one shuffled epoch on `device`."""
    if on_device:  # as the datamodule does under a trainer: the split moved once, before timing
        split = Split(split.ids, split.flat.to(device), split.category.to(device))
    data = WeightSetDataModule.of_splits(split, None, batch, on_device=on_device)
    best = float("inf")
    for _ in range(repeat):
        loader = data.train_dataloader()
        t0 = time.perf_counter()
        for x, c in loader:
            x, c = x.to(device), c.to(device)  # a no-op for device batches
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def run(device: torch.device, batches: list[int], repeat: int) -> list[dict[str, Any]]:
    dim = make_layout(FIELD_PRESETS["moe_equal"]).dim
    flat = torch.randn(SHAPES, dim, generator=torch.Generator().manual_seed(0))
    split = Split([str(i) for i in range(SHAPES)], flat, torch.zeros(SHAPES, dtype=torch.long))
    rows = []
    for batch in batches:
        n_batches = -(-SHAPES // batch)
        row: dict[str, Any] = {"batch": batch, "batches_per_epoch": n_batches}
        for name, on_device in (("host_loader", False), ("device_batches", True)):
            seconds = epoch_seconds(split, batch, on_device, device, repeat)
            row[f"{name}_ms_per_batch"] = 1000 * seconds / n_batches
        row["speedup"] = row["host_loader_ms_per_batch"] / row["device_batches_ms_per_batch"]
        rows.append(row)
        print(row, flush=True)
    return rows


def section(r: dict[str, Any]) -> str:
    m = r["machine"]
    where = m.get("gpu") if r["device"] == "cuda" else f"CPU {m.get('cpu')} ({m.get('cores')} cores)"
    lines = [
        f"## Diffusion training batches on {where} (`benchmarks/bench_batches.py`)",
        "",
        f"{r['shapes']} training vectors of {r['dim']} floats (the GPU profile's train split, reference "
        "field); milliseconds to have one shuffled batch on the training device (best of "
        f"{r['repeat']} epochs, torch threads {r['threads']}). Host loader = `train.data_on_device: "
        "false` (TensorDataset DataLoader, 0 workers, stacked on the host, then copied); device "
        "batches = the default (`DeviceBatches`: one index_select where the split lives).",
        "",
    ]
    if r.get("note"):
        lines += [r["note"], ""]
    rows = [
        [
            x["batch"],
            min(x["batch"], r["shapes"]),
            fmt(x["host_loader_ms_per_batch"], ".3f"),
            fmt(x["device_batches_ms_per_batch"], ".3f"),
            fmt(x["speedup"], ".1f"),
        ]
        for x in r["rows"]
    ]
    lines += [
        table(
            ["batch size", "rows a batch", "host loader ms/batch", "device batches ms/batch", "speedup"], rows
        )
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="32,512,4096")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--from-json", help="only rewrite the section from this results file (e.g. fetched)")
    ap.add_argument("--note", help="context stored with the results and shown under the section's title")
    args = ap.parse_args()
    if args.from_json:
        results = adopt_results(args.from_json)
        add_note(results["benchmark"], results, args.note)
        write_section(results["benchmark"], section(results))
        return
    device = torch.device(args.device)
    rows = run(device, [int(b) for b in args.batches.split(",")], args.repeat)
    name = f"batches_{device.type}"
    payload = {
        "device": device.type,
        "shapes": SHAPES,
        "dim": make_layout(FIELD_PRESETS["moe_equal"]).dim,
        "repeat": args.repeat,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    results = json.loads(save_json(name, payload).read_text())
    add_note(name, results, args.note)
    write_section(name, section(results))
    print(f"results/{name}.json; BENCHMARKS.md section {name}")


if __name__ == "__main__":
    main()
