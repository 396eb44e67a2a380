"""The pipeline's stages on a GPU: sample -> overfit -> train (Lightning, bf16) -> evaluate, then
1-NNA per sampler setting of the trained model (the speed/quality trade of DDPM-500 / DDIM-50 / DDIM-10).

Three steps, because the GPU machine has neither great-expectations nor manifold3d:
  1. here:        python benchmarks/bench_pipeline_gpu.py setup .gpurun    (prepare + validate, CPU)
  2. on the GPU:  cd .gpurun && bash ../benchmarks/pipeline_gpu/run.sh     (wheels in ../.gpu_wheels)
  3. here:        python benchmarks/bench_pipeline_gpu.py collect FOLDER
     (FOLDER: run.sh's $OUT/gpurun, and its printed output as stdout.txt)
`collect` reads the stage logs, reports/eval.json and the per-sampler rows run.sh printed, writes
benchmarks/results/pipeline_cuda.json and the BENCHMARKS.md section.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from common import ROOT, save_json, table, write_section

OVERRIDES = {
    "prepare": {"counts": {"airplane": 80}},
    "validate": {"docs": False},
    "sample": {
        "n_near": 20000,
        "n_uniform": 20000,
        "n_eval_near": 5000,
        "n_eval_uniform": 5000,
        "shard_size": 16,
    },
    "overfit": {"min_iou": 0.8, "min_part_iou": 0.3},
    "evaluate": {"resolution": 128, "render_count": 8},
    "diffusion": {
        "net": {"preset": "reference", "attention": "efficient"},
        "train": {
            "max_epochs": 300,
            "epoch_repeat": 8,
            "val_every": 100,
            "val_samples": 16,
            "val_resolution": 64,
            "checkpoint_every": 50,
        },
    },
}


def setup(folder: Path) -> None:
    """A project folder with the GPU profile (smaller), prepared and validated on this machine."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "pipelines", folder / "pipelines", dirs_exist_ok=True)
    if not (folder / "src").exists():
        (folder / "src").symlink_to(Path("..") / "src")
    params = yaml.safe_load((ROOT / "params-profiles" / "shapenet-gpu.yaml").read_text())
    for section, values in OVERRIDES.items():
        if section == "diffusion":
            params[section]["net"] = values["net"]
            params[section]["train"].update(values["train"])
        else:
            params[section].update(values)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("prepare", "validate"):
        subprocess.run([sys.executable, f"pipelines/{stage}.py"], cwd=folder, check=True)


def collect(folder: Path, note: str | None) -> dict:
    stdout = (folder / "stdout.txt").read_text()
    stages = {m[0]: int(m[2]) for m in re.findall(r"STAGE (\w+) rc=(\d+) (\d+) s", stdout)}
    overfit = re.search(r"overfit: (\d+) shapes, IoU ([\d.]+), part IoU ([\d.]+)", stdout)
    sampler_rows = json.loads(next(line for line in stdout.splitlines() if line.startswith('[{"method"')))
    evaluation = json.loads((folder / "gpurun" / "reports" / "eval.json").read_text())
    config = json.loads((folder / "gpurun" / "model_config.json").read_text())
    gpu = next(line for line in stdout.splitlines() if "NVIDIA" in line).strip()
    fits = {"n_shapes": int(overfit[1]), "iou": float(overfit[2]), "part_iou": float(overfit[3])}
    return {
        "gpu": gpu,
        "stage_seconds": stages,
        "overfit": fits,
        "net": config["net"],
        "train": {
            k: config.get(k) for k in ("epochs", "global_step", "train_loss", "val_loss") if k in config
        },
        "evaluate": {k: evaluation[k] for k in ("mmd", "cov", "nna", "n_evaluated", "n_generated")},
        "train_as_generator": evaluation["yardsticks"]["train_as_generator"],
        "per_sampler": sampler_rows,
        "note": note,
    }


def section(r: dict) -> str:
    st = r["stage_seconds"]
    lines = [
        f"Card: {r['gpu']}. 80 procedural airplanes (GPU profile, sampled at 20k+20k), reference net "
        f"(12 x 512, 16 heads, `{r['net'].get('attention')}` attention), Lightning bf16-mixed, "
        "300 epochs x 8 repeats at batch 32.",
        "",
    ]
    lines.append(
        table(
            [
                "sample s",
                "overfit s",
                "train s",
                "evaluate s",
                "overfit IoU",
                "part IoU",
                "MMD",
                "COV",
                "1-NNA",
                "train-as-generator 1-NNA",
            ],
            [
                [
                    st.get("sample"),
                    st.get("overfit"),
                    st.get("train"),
                    st.get("evaluate"),
                    f"{r['overfit']['iou']:.4f}",
                    f"{r['overfit']['part_iou']:.4f}",
                    f"{r['evaluate']['mmd']:.4f}",
                    f"{r['evaluate']['cov']:.3f}",
                    f"{r['evaluate']['nna']:.3f}",
                    f"{r['train_as_generator']['nna']:.3f}",
                ]
            ],
        )
    )
    lines += ["", "Per sampler setting (val + test references):", ""]
    lines.append(
        table(
            ["sampler", "steps", "samples", "seconds (all)", "MMD", "COV", "1-NNA"],
            [
                [
                    x["method"],
                    x["steps"],
                    x["n_samples"],
                    f"{x['sample_seconds']:.3f}",
                    f"{x['mmd']:.4f}",
                    f"{x['cov']:.3f}",
                    f"{x['1-nna']:.3f}",
                ]
                for x in r["per_sampler"]
            ],
        )
    )
    if r.get("note"):
        lines += ["", r["note"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("setup", "collect"))
    ap.add_argument("folder", type=Path)
    ap.add_argument("--note")
    args = ap.parse_args()
    if args.step == "setup":
        setup(args.folder)
        return
    results = collect(args.folder, args.note)
    save_json("pipeline_cuda", results)
    write_section("pipeline_cuda", section(results))


if __name__ == "__main__":
    main()
