"""DVC stage `overfit`: fit one mixture-of-experts occupancy field per shape, many shapes at once.

`dvc repro` runs it as one process (Lightning Fabric over `overfit.devices`). For array jobs, one
process per GPU fits every n-th weight shard and the last one to finish writes the manifest:
    CUDA_VISIBLE_DEVICES=i python pipelines/overfit.py --shard i/n      (i = 0 .. n-1, at once)
The merged weight set is the one a single process writes (same shards, same shared initialization).
"""

import argparse
import json

from shd import paths
from shd.atomic import write_json
from shd.config import load_params
from shd.devices import resolve_device
from shd.errors import InputError
from shd.fields.config import OverfitConfig
from shd.fields.fit import fit_sample_set, fit_with_fabric
from shd.fields.report import iou_histogram
from shd.stage import console, main, write_metrics
from shd.tracking import log_stage_run

WEIGHTS = paths.WEIGHTS
HEADLINE = {"iou": "iou_mean", "part_iou": "iou_part_mean", "n_bad": "n_bad"}  # -> metrics/overfit.json


def run() -> None:
    section = dict(load_params().get("overfit") or {})
    accelerator, devices = section.pop("accelerator", "auto"), section.pop("devices", 1)
    cfg = OverfitConfig.from_dict(section)

    def progress(p: dict) -> None:
        console.print(
            f"overfit: {p['done_shapes']}/{p['total_shapes']} shapes "
            f"({p['elapsed_s']:.0f} s, shard {p['shard']})",
            highlight=False,
        )

    shard = parse_shard(arguments().shard)
    if shard is not None:
        device = resolve_device("cuda" if accelerator == "gpu" else accelerator, "overfit.accelerator")
        summary = fit_sample_set(paths.SAMPLES, WEIGHTS, cfg, device=device, shard=shard, progress=progress)
        if "n_shapes" not in summary:
            console.print(
                f"overfit: shard {shard[0]}/{shard[1]} done ({summary['fitted_shards']} weight "
                "shards); the manifest is written by the last shard to finish",
                highlight=False,
            )
            return
    else:
        summary = fit_with_fabric(
            paths.SAMPLES, WEIGHTS, cfg, accelerator=accelerator, devices=devices, progress=progress
        )
        if summary.get("rank", 0) != 0:  # Fabric: rank 0 reports
            return
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    metrics = {
        **manifest["summary"],
        "seconds": summary["seconds"],
        "fitted_shards": summary["fitted_shards"],
        "reused_shards": summary["reused_shards"],
    }
    write_json(paths.OVERFIT_REPORT, metrics)  # the summary with timings and shard counts
    write_metrics(paths.OVERFIT_METRICS, metrics, HEADLINE)  # its deterministic numbers
    iou_histogram(manifest["shapes"], paths.OVERFIT_IOU_PLOT)
    log_stage_run(
        "shd-overfit",
        f"overfit-{section.get('field', 'moe_equal')}",
        {"overfit": cfg.to_dict(), "accelerator": accelerator, "devices": devices},
        metrics,
        artifacts=[paths.OVERFIT_REPORT, paths.OVERFIT_IOU_PLOT, WEIGHTS / "manifest.json"],
    )
    console.print(
        f"overfit: {metrics['n_shapes']} shapes, IoU {metrics['iou_mean']:.4f}, part IoU "
        f"{metrics['iou_part_mean']:.4f}, {metrics['n_bad']} bad fits",
        highlight=False,
    )


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shard", help="i/n: fit only weight shards k with k %% n == i (one process per GPU)")
    return ap.parse_args()


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' -> (i, n) with 0 <= i < n."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError("--shard", f"expected i/n such as 0/4, got {text!r}") from None
    if not 0 <= i < n:
        raise InputError("--shard", f"expected 0 <= i < n, got {text!r}")
    return i, n


if __name__ == "__main__":
    main(run)
