"""Part-level applications on a trained product: hybrid part fidelity, completion 1-NNA, interpolation
smoothness (shd.apps.quality), plus one example output folder per command (shd.apps.examples).

Rerun: `.venv/bin/python benchmarks/bench_apps.py --project /work/main [--device cpu] [--raw]`.
Reads the project's models/diffusion/model, data/weights and data/samples (nothing is written there);
writes metrics/apps.json and reports/apps/ under this checkout, benchmarks/results/apps_<device>.json
and that section of BENCHMARKS.md (`--from-json FILE` only rewrites the section).

`--raw` also measures the same run's non-EMA weights (the `net.` entries of last.ckpt) as a
diagnostic: at short training lengths the exported EMA weights still hold much of the initialization.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
from common import ROOT, save_json, table, write_section

from shd.apps.config import AppsConfig
from shd.apps.examples import write_examples
from shd.apps.quality import quality_figures, write_quality
from shd.config import load_params, section_config
from shd.data.sample_store import SampleSet
from shd.diffusion.api import load_model
from shd.diffusion.sampler import WeightSampler
from shd.fields.weight_set import WeightSet

STRENGTHS = (0.05, 0.1, 0.2)


def raw_sampler(project: Path, device: str) -> WeightSampler:
    """The exported model with the checkpoint's raw (non-EMA) denoiser weights loaded instead."""
    sampler = load_model(project / "models/diffusion/model", device=device)
    ckpt = torch.load(
        project / "models/diffusion/checkpoints/last.ckpt", map_location="cpu", weights_only=True
    )
    state = {k[len("net.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    sampler.net.load_state_dict(state)
    return sampler


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def hybrid_lines(hyb: dict[str, Any]) -> list[str]:
    parts = list(hyb["parent_a_vs_parent_b_part_cd"])
    rows = [["A vs B (yardstick)", "-", *(_f(hyb["parent_a_vs_parent_b_part_cd"][p]) for p in parts), "-"]]
    for name, v in hyb["variants"].items():
        ok = f"{v['mesh_status']['ok']}/{sum(v['mesh_status'].values())}"
        rows.append(
            [f"{name}: part from B", ok, *(_f(v["swapped_part_cd"][p]) for p in parts), _f(v["mean_part_cd"])]
        )
        rows.append([f"{name}: parts from A", ok, *(_f(v["kept_part_cd"][p]) for p in parts), ""])
    return [
        f"**Hybrid part fidelity** ({len(hyb['pairs'])} train pairs x {len(parts)} hybrids "
        "'part p from B, the rest from A'): mean CD of each hybrid part to the part it came from; "
        "yardstick: CD between A's and B's same part.",
        "",
        table(["hybrid", "meshes ok", *parts, "mean"], rows),
        "",
    ]


def completion_lines(comp: dict[str, Any]) -> list[str]:
    rows = []
    for name in ("completion", "plain_samples", "parents"):
        r = comp[name]
        rows.append(
            [
                name,
                f"{r['n_evaluated']}/{r['n_generated']}",
                _f(r["mmd"]),
                _f(r["cov"]),
                _f(r["nna"]),
                _f(r["novelty_median_nearest_train"]),
            ]
        )
    header = ["generator", "evaluated", "MMD", "COV", "1-NNA", "median CD to nearest train"]
    return [
        f"**Completion** (keep {', '.join(comp['kept'])}, generate {', '.join(comp['generated'])}; "
        f"{comp['steps']} DDIM steps, resample {comp['resample']}; kept experts bit-identical: "
        f"**{comp['kept_bit_identical']}**) against the {comp['n_reference']} test-split shapes, "
        f"{comp['normalization']}:",
        "",
        table(header, rows),
        "",
    ]


def interpolation_lines(interp: dict[str, Any], parts: list[str]) -> list[str]:
    rows = []
    for m in ("linear", "slerp"):
        r = interp[m]
        rows.append(
            [
                m,
                _f(r["mean_jump"]),
                _f(r["max_jump"]),
                f"{r['n_failed']}/{r['n']}",
                *(_f(r["mean_jump_by_part"][p]) for p in parts),
            ]
        )
    header = ["blend", "mean jump", "max jump", "failed", *(f"jump {p}" for p in parts)]
    return [
        f"**Interpolation smoothness** ({len(interp['pairs'])} train pairs x {len(parts)} parts, "
        f"{interp['frames']} frames): jump = largest step CD / mean step CD (1 = evenly paced).",
        "",
        table(header, rows),
        "",
    ]


def section(payload: dict[str, Any]) -> str:
    m = payload["machine"]
    settings = json.dumps(payload["models"]["exported"]["settings"])
    lines = [
        "## Part-level applications (shd hybrid / interpolate / complete)",
        "",
        f"Measured {payload['date']} on {m.get('cpu')} ({m.get('cores')} cores), device "
        f"{payload['device']}, on the product in `{payload['project']}` ({payload['n_weights']} fitted "
        f"fields and its exported denoiser; see the note). Settings: {settings}. CDs are "
        "squared Chamfer distances in the shapes' common frame (not normalized); `n/a` = no part "
        "surface (part absent or mesh empty).",
        "",
    ]
    for label, rep in payload["models"].items():
        parts = list(rep["hybrid"]["parent_a_vs_parent_b_part_cd"])
        lines += [f"### Model: {label}", ""]
        lines += hybrid_lines(rep["hybrid"]) + completion_lines(rep["completion"])
        lines += interpolation_lines(rep["interpolation"], parts)
        lines += [f"Seconds: {', '.join(f'{k} {v:.0f}' for k, v in rep['seconds'].items())}.", ""]
    if payload.get("note"):
        lines += [payload["note"], ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=ROOT, help="project with the trained product")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--resolution", type=int, default=None, help="mesh grid (default: params.yaml apps)")
    ap.add_argument("--pairs", type=int, default=None, help="train pairs (default: params.yaml apps)")
    ap.add_argument("--raw", action="store_true", help="also measure the checkpoint's non-EMA weights")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", help="context shown in the section")
    ap.add_argument("--from-json", help="only rewrite the BENCHMARKS.md section from this results file")
    args = ap.parse_args()
    if args.from_json:
        payload = json.loads(Path(args.from_json).read_text())
        write_section(f"apps_{payload['device']}", section(payload))
        return
    torch.set_num_threads(args.threads)
    cfg = section_config(load_params(ROOT / "params.yaml"), "apps", AppsConfig)
    overrides = {"device": args.device, "resolution": args.resolution, "quality_pairs": args.pairs}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    weights = WeightSet.open(args.project / "data/weights")
    samples = SampleSet.open(args.project / "data/samples")
    samplers = {"exported": load_model(args.project / "models/diffusion/model", device=args.device)}
    if args.raw:
        samplers["raw (non-EMA) weights of last.ckpt"] = raw_sampler(args.project, args.device)
    models = {}
    for label, sampler in samplers.items():
        t0 = time.perf_counter()
        models[label] = quality_figures(sampler, weights, samples, cfg=cfg, strengths=STRENGTHS)
        print(f"{label}: {time.perf_counter() - t0:.0f} s", flush=True)
    write_quality(ROOT / "metrics/apps.json", models["exported"])
    examples = write_examples(samplers["exported"], weights, ROOT / "reports/apps", cfg=cfg)
    device = torch.device(args.device).type
    payload = {
        "device": device,
        "project": str(args.project),
        "n_weights": len(weights.ids(status=None)),
        "note": args.note,
        "models": models,
        "examples": {k: str(Path("reports/apps") / k) for k in examples},
    }
    path = save_json(f"apps_{device}", payload)
    write_section(f"apps_{device}", section(json.loads(path.read_text())))
    print(f"wrote {path}, metrics/apps.json, reports/apps/ and the BENCHMARKS.md section")


if __name__ == "__main__":
    main()
