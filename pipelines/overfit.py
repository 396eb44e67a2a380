"""DVC stage `overfit`: fit one mixture-of-experts occupancy field per shape, many shapes at once."""

import json
from pathlib import Path

from shd.atomic import write_json
from shd.config import load_params
from shd.fields.config import OverfitConfig
from shd.fields.fit import fit_with_fabric
from shd.fields.report import iou_histogram
from shd.stage import console, main
from shd.tracking import log_stage_run

WEIGHTS = Path("data/weights")


def run() -> None:
    section = dict(load_params().get("overfit") or {})
    accelerator, devices = section.pop("accelerator", "auto"), section.pop("devices", 1)
    cfg = OverfitConfig.from_dict(section)

    def progress(p: dict) -> None:
        console.print(f"overfit: {p['done_shapes']}/{p['total_shapes']} shapes "
                      f"({p['elapsed_s']:.0f} s, shard {p['shard']})", highlight=False)

    summary = fit_with_fabric("data/samples", WEIGHTS, cfg, accelerator=accelerator, devices=devices,
                              progress=progress)
    if summary.get("rank", 0) != 0:
        return
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    metrics = {**manifest["summary"], "seconds": summary["seconds"],
               "fitted_shards": summary["fitted_shards"], "reused_shards": summary["reused_shards"]}
    write_json("metrics/overfit.json", metrics)
    iou_histogram(manifest["shapes"], "reports/overfit_iou.png")
    log_stage_run("shd-overfit", f"overfit-{section.get('field', 'moe_equal')}",
                  {"overfit": cfg.to_dict(), "accelerator": accelerator, "devices": devices}, metrics,
                  artifacts=["metrics/overfit.json", "reports/overfit_iou.png", WEIGHTS / "manifest.json"])
    console.print(f"overfit: {metrics['n_shapes']} shapes, IoU {metrics['iou_mean']:.4f}, part IoU "
                  f"{metrics['iou_part_mean']:.4f}, {metrics['n_bad']} bad fits", highlight=False)


if __name__ == "__main__":
    main(run)
