"""Does the diffusion sweep's objective tell trials apart at the sweep's budget, and how noisy is it?

Trains `--configs` configurations drawn at random (seeded) from params.yaml's `sweep.diffusion.space`,
each with the sweep's fixed budget (`sweep.diffusion.fixed`), exactly as a trial does (shd.diffusion.train
with the generation check), then repeats the first configuration with `--seeds` training seeds. For
every run it records the objective of record (shd.sweep.diffusion.generation_objective: MMD-based) beside
the former one (1-NNA + 1e-3 * MMD / (1 + MMD)), the validation loss and the check's MMD / COV / 1-NNA.
The results JSON is rewritten after every run.

    python benchmarks/bench_sweep_objective.py --project . --out-dir $OUT [--configs 4 --seeds 3]

`--project` is a folder where `dvc repro overfit` ran (data/weights, data/samples, params.yaml).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml

from shd.atomic import write_json
from shd.diffusion.config import DiffusionConfig
from shd.diffusion.train import train
from shd.progress import quiet_known_noise
from shd.sweep.config import sweep_config
from shd.sweep.diffusion import SECTION, generation_objective
from shd.sweep.space import merge, nest, suggest


def former_objective(reports: dict[str, dict[str, Any]]) -> float:
    """The objective before this benchmark: mean 1-NNA with MMD as a 1e-3 tie-break (worst 1.001)."""
    values = []
    for rep in reports.values():
        nna, mmd = rep.get("1-nna"), rep.get("mmd")
        ok = nna is not None and mmd is not None and math.isfinite(nna) and math.isfinite(mmd)
        values.append(nna + 1e-3 * mmd / (1.0 + mmd) if ok else 1.001)
    return sum(values) / len(values) if values else 1.001


def configurations(params: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """`n` searched-value sets drawn at random from the diffusion space (a fixed seed: the same set)."""
    kind = sweep_config(params).kind(SECTION)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(suggest(trial, kind.space))
        study.tell(trial, 0.0)
    return out


def one_run(project: Path, params: dict[str, Any], values: dict[str, Any], seed: int, device: str) -> dict:
    kind = sweep_config(params).kind(SECTION)
    section = merge(merge(params.get(SECTION) or {}, kind.fixed), nest(values))
    section = merge(section, {"train": {"seed": seed, "accelerator": device, "experiment": "bench-sweep"}})
    with tempfile.TemporaryDirectory() as scratch:
        t0 = time.perf_counter()
        summary = train(
            project / "data/weights",
            DiffusionConfig.from_dict(section),
            Path(scratch) / "model",
            sample_dir=project / "data/samples",
            resume=False,
            tracking_root=Path(scratch) / "mlruns",
            run_name="bench-sweep-objective",
        )
        seconds = time.perf_counter() - t0
    reports = summary.get("val_generation") or {}
    return {
        "values": values,
        "seed": seed,
        "objective": generation_objective(reports),
        "former_objective": former_objective(reports),
        "val_loss": summary.get("val_loss"),
        "epochs": summary.get("epochs"),
        "check": {
            c: {k: r.get(k) for k in ("mmd", "cov", "1-nna", "n_usable", "n_samples")}
            for c, r in reports.items()
        },
        "seconds": seconds,
    }


def spread(values: list[float]) -> dict[str, float | int]:
    return {
        "n_distinct": len({round(v, 9) for v in values}),
        "min": min(values),
        "max": max(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--configs", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    args = ap.parse_args()
    quiet_known_noise()
    params = yaml.safe_load((args.project / "params.yaml").read_text())
    configs = configurations(params, args.configs, args.sample_seed)
    out = args.out_dir / f"sweep_objective_{'cpu' if args.device == 'cpu' else 'gpu'}.json"
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "budget": sweep_config(params).kind(SECTION).fixed,
        "configs": [],
        "seeds": [],
    }
    plan = [("configs", c, 0) for c in configs] + [("seeds", configs[0], s) for s in range(1, args.seeds)]
    for group, values, seed in plan:
        run = one_run(args.project, params, values, seed, args.device)
        result[group].append(run)
        print(
            f"{group} seed {seed}: objective {run['objective']:.5f} (former {run['former_objective']:.4f}), "
            f"val loss {run['val_loss']}, {run['seconds']:.0f} s, {values}",
            flush=True,
        )
        repeats = [result["configs"][0], *result["seeds"]] if result["configs"] else []
        result["summary"] = {
            key: {
                "across_configs": spread([r[key] for r in result["configs"]]),
                "across_seeds_of_config_0": spread([r[key] for r in repeats]),
            }
            for key in ("objective", "former_objective")
        }
        write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
