"""The paper-scale quality table (issue 20): every row on the test split, in one resumable command.

Run it on the GPU machine after the paper-scale run (benchmarks/paper_scale_run.py, i.e.
`make repro PROFILE=shapenet-gpu` stage by stage, in the DVC workspace runs/shapenet-gpu/):

  PYTHONPATH=src python benchmarks/bench_paper_scale.py --project runs/shapenet-gpu --fit-single \
      --train-single --stages $OUT/paper_scale_run.json --device cuda --out-dir $OUT

Steps, each resumable (rerun the same command after a time limit: fitted shards, the last checkpoint
and the scored rows are kept):
  1. `--fit-single`: the single-MLP weight set (`field: single`, the project's other overfit options)
     of the same sample set into --single-weights (default data/weights_single);
  2. `--train-single`: the HyperDiffusion baseline trained on it as the semantic model was (its exported
     net, schedule, train options; the same optimizer step count) into --single-model;
  3. the table: rows moe_ddpm500, moe_ddim50, moe_ddim10, single, train_as_generator, noise_low,
     noise_high, under the project's `evaluate` params (resolution, normalization, 1.1x references).
The table with its scatter points goes to <project>/metrics/quality_table.json (the HTML report draws
the novelty-vs-quality scatter from it: `shd report`); $OUT/paper_scale.json holds the rows without
points plus wall_seconds, stages, n_references, normalization, commit, command (from --stages: the run
record of benchmarks/paper_scale_run.py, or a plain {stage: seconds} file; --command / --commit /
--wall-seconds override).

Here, afterwards: `PYTHONPATH=src python benchmarks/bench_paper_scale.py --from-json FETCHED/paper_scale.json`
merges it into benchmarks/results/paper_scale.json (keeping the stage fields that
`paper_scale_run.py --collect` wrote there) and rewrites the `paper_scale` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import RESULTS, machine, write_section

from shd import paths
from shd.config import load_params, section_config
from shd.errors import InputError
from shd.eval.evaluate import EvaluateConfig
from shd.eval.quality_table import NOISE_LEVELS, ROW_NAMES, table_markdown, without_points

NAME = "paper_scale"
RUN_KEYS = ("stages", "wall_seconds", "command", "commit", "card", "profile")


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--single-weights", type=Path, default=paths.SINGLE_WEIGHTS)
    ap.add_argument("--single-model", type=Path, default=paths.SINGLE_DIFFUSION)
    ap.add_argument("--fit-single", action="store_true", help="fit the single-MLP weight set if unfinished")
    ap.add_argument("--train-single", action="store_true", help="train the single-MLP baseline if unfinished")
    ap.add_argument("--rows", default=",".join(ROW_NAMES), help="comma-separated rows to score")
    ap.add_argument("--noise", default=",".join(f"{k}={v}" for k, v in NOISE_LEVELS.items()))
    ap.add_argument("--device", default=None, help="overrides evaluate.device")
    ap.add_argument("--resolution", type=int, default=None, help="overrides evaluate.resolution")
    ap.add_argument("--stages", type=Path, default=None, help="JSON: {stage: seconds} of the run")
    ap.add_argument("--wall-seconds", type=float, default=None, help="whole run (default: sum of stages)")
    ap.add_argument("--command", default=None, help="the command that made the run")
    ap.add_argument("--commit", default=None, help="the run's commit (default: git rev-parse of --project)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--note", default=None)
    ap.add_argument("--from-json", type=Path, default=None, help="only adopt FILE and rewrite the section")
    return ap.parse_args()


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def read_stages(path: Path | None) -> dict[str, Any]:
    """The run's record (benchmarks/paper_scale_run.py's paper_scale_run.json, or a plain
    {stage: seconds} file): stages, and wall_seconds / command / commit / card where it has them."""
    if path is None:
        return {"stages": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"expected a JSON file of stage seconds ({exc})") from None
    stages = data.get("stages", data) if isinstance(data, dict) else None
    if not isinstance(stages, dict) or not all(isinstance(v, int | float) for v in stages.values()):
        raise InputError(path, "expected {stage: seconds} or {'stages': {stage: seconds}, ...}")
    known = {k: data.get(k) for k in RUN_KEYS if k != "stages" and isinstance(data.get(k), str | int | float)}
    return {"stages": {k: float(v) for k, v in stages.items()}, **known}


def merge_results(new: dict[str, Any]) -> dict[str, Any]:
    """benchmarks/results/paper_scale.json with `new`'s rows and protocol; the run's own fields
    (stages, wall_seconds, card, commit, command: benchmarks/paper_scale_run.py --collect may have
    written them first) are kept where `new` lacks them."""
    target = RESULTS / f"{NAME}.json"
    old = json.loads(target.read_text()) if target.exists() else {}
    merged = {**old, **new}
    for key in RUN_KEYS:
        if new.get(key) in (None, {}, "") and old.get(key) not in (None, {}, ""):
            merged[key] = old[key]
    target.write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def noise_levels(text: str) -> dict[str, float]:
    try:
        levels = {k: float(v) for k, v in (item.split("=") for item in text.split(",") if item)}
    except ValueError:
        raise InputError("--noise", f"expected noise_low=0.1,noise_high=0.3, got {text!r}") from None
    if set(levels) != set(NOISE_LEVELS):
        raise InputError("--noise", f"expected levels for {sorted(NOISE_LEVELS)}, got {sorted(levels)}")
    return levels


def fit_single(project: Path, out: Path) -> None:
    """The single-MLP weight set of the project's sample set, with its other overfit options."""
    import torch

    from shd.fields.config import OverfitConfig
    from shd.fields.fit import fit_sample_set

    section = dict(load_params(project / paths.PARAMS).get("overfit") or {})
    section.pop("accelerator", None), section.pop("devices", None)
    cfg = OverfitConfig.from_dict({**section, "field": "single"})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    summary = fit_sample_set(project / paths.SAMPLES, out, cfg, device=device)
    n, iou = summary.get("n_shapes"), summary.get("iou_mean")
    print(f"single fits: {n} shapes, IoU {iou}, {summary['seconds']:.0f} s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from shd.diffusion.quality_table import TableInputs, build_quality_table, train_single_baseline

    t0 = time.perf_counter()
    project = args.project.resolve()
    single_weights = (
        args.single_weights if args.single_weights.is_absolute() else project / args.single_weights
    )
    single_model = args.single_model if args.single_model.is_absolute() else project / args.single_model
    cfg = section_config(load_params(project / paths.PARAMS), "evaluate", EvaluateConfig)
    cfg = replace(cfg, render_count=0, **({"device": args.device} if args.device else {}))
    if args.resolution:
        cfg = replace(cfg, resolution=args.resolution)
    seconds: dict[str, float] = {}
    if args.fit_single:
        start = time.perf_counter()
        fit_single(project, single_weights)
        seconds["fit_single"] = time.perf_counter() - start
    if args.train_single and not (single_model / "model" / "config.json").exists():
        start = time.perf_counter()
        summary = train_single_baseline(
            single_weights,
            project / paths.DIFFUSION,
            single_model,
            sample_dir=project / paths.SAMPLES,
            tracking_root=project / "mlruns",
        )
        seconds["train_single"] = time.perf_counter() - start
        print(f"single baseline: {summary.get('global_step')} steps, {summary.get('seconds', 0):.0f} s")
    has_single = (single_weights / "manifest.json").exists() and (
        single_model / "model" / "config.json"
    ).exists()
    run_record = read_stages(args.stages)
    stages = run_record["stages"]
    inputs = TableInputs(
        project / paths.WEIGHTS,
        project / paths.SAMPLES,
        project / paths.DIFFUSION,
        single_weights if has_single else None,
        single_model if has_single else None,
        rows=tuple(r for r in args.rows.split(",") if r),
        noise_levels=noise_levels(args.noise),
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)

    def progress(p: dict[str, Any]) -> None:
        print(
            f"{p['row']}: 1-NNA {p['nna']}, MMD {p['mmd']}, COV {p['cov']} ({p['seconds']:.0f} s)", flush=True
        )

    full = build_quality_table(
        inputs,
        cfg,
        project / paths.QUALITY_TABLE,
        stages=stages,
        wall_seconds=args.wall_seconds
        if args.wall_seconds is not None
        else run_record.get("wall_seconds", sum(stages.values()) or None),
        commit=args.commit or run_record.get("commit") or git_commit(project),
        command=args.command or run_record.get("command"),
        progress=progress,
    )
    seconds["table"] = time.perf_counter() - t0 - sum(seconds.values())
    payload = {**without_points(full), "table_seconds": seconds, "device": cfg.device}
    if run_record.get("card"):
        payload["card"] = run_record["card"]
    if args.note:
        payload["note"] = args.note
    if args.out_dir.resolve() == RESULTS.resolve():
        stamp = {
            "benchmark": NAME,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
        }
        merge_results({**stamp, **payload})
    else:  # the same fields save_json writes, in $OUT
        stamp = {
            "benchmark": NAME,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
        }
        (args.out_dir / f"{NAME}.json").write_text(json.dumps({**stamp, **payload}, indent=2) + "\n")
    return payload


def section(r: dict[str, Any]) -> str:
    m = r.get("machine") or {}
    where = m.get("gpu") or f"CPU {m.get('cpu')} ({m.get('cores')} cores)"
    run_on = f" (the run: {r['card']})" if r.get("card") and r["card"] != m.get("gpu") else ""
    p = r.get("protocol") or {}
    sigmas = " / ".join(f"{x['name']} {x['sigma']}" for x in r["rows"] if x.get("sigma") is not None)
    lines = [
        "## Paper-scale quality table (issue 20)",
        "",
        f"Table measured {r.get('date', '')} on {where}{run_on}, commit `{r.get('commit')}`, run command "
        f"`{r.get('command')}`; table by `benchmarks/bench_paper_scale.py`. Every row: "
        f"{r.get('n_references')} test references, {p.get('generate_factor')}x generated, meshes at "
        f"{p.get('resolution')}^3, {p.get('n_points')} points, normalization `{r.get('normalization')}`, "
        f"1-NNA 95% interval from {p.get('nna_resamples')} bootstrap resamples. Novelty: median CD of the "
        "scored shapes to their nearest training shape. Noise rows: training weights plus sigma x the "
        f"diffusion model's normalization std ({sigmas or 'not scored'}).",
        "",
        table_markdown(r),
    ]
    if r.get("wall_seconds") is not None:
        lines += ["", f"Whole run {r['wall_seconds']:.0f} s (stage by stage: section `paper_scale_stages`)."]
    if r.get("note"):
        lines += ["", r["note"]]
    return "\n".join(lines)


def main() -> None:
    args = arguments()
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
        if results.get("benchmark") != NAME or "rows" not in results:
            raise SystemExit(f"{args.from_json}: not a {NAME} table (bench_paper_scale.py's output)")
        results = merge_results(results)
    else:
        results = run(args)
        if args.out_dir.resolve() != RESULTS.resolve():
            return  # measured elsewhere: adopt it here with --from-json
        results = json.loads((RESULTS / f"{NAME}.json").read_text())
    write_section(NAME, section(results))


if __name__ == "__main__":
    main()
