"""Multi-GPU scaling: Lightning DDP training of the diffusion model, and overfit array jobs.

Rerun from the repository root (on the 2-GPU machine `benchmarks/multigpu/run.sh` does all of it):
  python benchmarks/bench_multigpu.py diffusion --devices 2 --work DIR   # DDP samples/s, loss parity
  python benchmarks/bench_multigpu.py overfit --devices 2 --project .gpurun --work DIR
  python benchmarks/bench_multigpu.py report --work DIR   # -> results/multigpu_<cuda|cpu>.json, section
  python benchmarks/bench_multigpu.py report --from-json FILE   # the section from a fetched results file
Each step also runs on CPU (`--accelerator cpu`: gloo, tiny net, tiny batch), as a smoke test.

- diffusion: `DiffusionModule` under a Lightning Trainer (strategy "ddp" also on one device, so both
  runs take the same code path and the same data order; `diffusion-run --strategy auto` times one
  device the way `shd` trains), with shd's datamodule over seeded synthetic weight vectors kept on each
  device (`DeviceBatches`: a batch is one index_select) and shd's per-step callbacks (divergence check,
  throughput clock). Global samples/s at a fixed per-device batch over the optimizer
  steps after a warm-up, for 1 and N devices; scaling efficiency = rate_N / (N x rate_1). Parity: the
  same seed, global batch and step count on 1 and N devices, then one held-out loss on fixed noise.
- overfit: `pipelines/overfit.py --shard i/N` as N processes started at once (CUDA_VISIBLE_DEVICES=i)
  vs `--shard 0/1`, each into empty weights, in a scratch copy of the project (its params with a
  smaller `overfit.shard_size`, so there are shards to split; its samples linked). Wall seconds,
  shapes/s, scaling efficiency, and the merged N-process weight set compared with the 1-process one.

Every launch is a fresh process group with a hard timeout; each finished run is written to the work
folder at once, so a step killed later keeps what it measured. Imports neither MLflow nor
shd.tracking / shd.diffusion.train (the overfit stage it launches does log to MLflow).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import yaml
from common import RESULTS, ROOT, add_note, adopt_results, fmt, machine, save_json, table, write_section

from shd.diffusion.callbacks import FiniteLoss, Throughput
from shd.diffusion.config import NET_PRESETS, ScheduleConfig, TrainConfig
from shd.diffusion.datamodule import Split, WeightSetDataModule
from shd.diffusion.module import DiffusionModule
from shd.diffusion.normalization import Normalizer
from shd.diffusion.objective import diffusion_loss
from shd.fields.config import FIELD_PRESETS
from shd.fields.layout import Layout, make_layout
from shd.fields.weight_set import WeightSet

RESULT = "MULTIGPU_RESULT "  # prefix of the one JSON line rank 0 prints
FIELD = "moe_equal"
SCALE = 0.05  # synthetic weights: N(0, SCALE^2) per scalar
DEFAULT_WORK = Path("/tmp/shd-multigpu")


# ---------------------------------------------------------------- processes


def start(
    cmd: list[str],
    log: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """A child in its own process group (so a timeout also ends the ranks Lightning starts from it),
    its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )


def finish(procs: list[subprocess.Popen], timeout: float) -> list[dict[str, Any]]:
    """Wait for all, then end their groups: whatever is alive at the deadline (or when this process is
    ended), and any rank a finished launch left behind; per process: return code (None: killed) and
    seconds from now to its exit."""
    t0 = time.perf_counter()
    done: dict[int, dict[str, Any]] = {}
    try:
        while len(done) < len(procs) and time.perf_counter() - t0 < timeout:
            for i, p in enumerate(procs):
                if i not in done and p.poll() is not None:
                    done[i] = {"rc": p.returncode, "seconds": time.perf_counter() - t0}
            time.sleep(0.05)
    finally:
        for i, p in enumerate(procs):
            _kill_group(p)
            done.setdefault(i, {"rc": None, "seconds": time.perf_counter() - t0})
    return [done[i] for i in range(len(procs))]


def _kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)  # the group `start` made: this launch's processes only
    except ProcessLookupError:
        pass
    p.wait()


def _exit_on_term(signum: int, frame: Any) -> None:
    """An outer `timeout` sends SIGTERM: leave through `finish`'s cleanup instead of orphaning ranks."""
    sys.exit(128 + signum)


def update_part(work: Path, name: str, key: str, value: Any) -> None:
    """Record one measurement in work/NAME.json at once (a later kill keeps it)."""
    path = work / f"{name}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


# ---------------------------------------------------------------- diffusion: one Lightning launch


def vector_data(flat: torch.Tensor, batch_size: int, repeat: int, seed: int) -> WeightSetDataModule:
    """shd's training datamodule over synthetic vectors (no weight set on disk): each rank's batches are
    gathered on its device (`DeviceBatches`), as `shd` trains."""
    train = Split([str(i) for i in range(len(flat))], flat, torch.zeros(len(flat), dtype=torch.long))
    return WeightSetDataModule.of_splits(train, None, batch_size, repeat=repeat, on_device=True, seed=seed)


class StepTimer(pl.Callback):
    """Seconds from the end of optimizer step `warmup` to the end of the last, on rank 0, with CUDA
    synchronized at both ends (rank 0 waits in each step's all-reduce, so its clock covers every rank)."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.marks: dict[int, float] = {}

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if trainer.is_global_zero and step in (self.warmup, trainer.max_steps):
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)
            self.marks[step] = time.perf_counter()

    def seconds(self, last: int) -> float:
        return self.marks[last] - self.marks[self.warmup]


def synthetic(n: int, dim: int, seed: int) -> torch.Tensor:
    """(n, dim) vectors from a seeded CPU generator: the same data in every run and on every rank."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) * SCALE


def make_module(args: argparse.Namespace, layout: Layout, normalizer: Normalizer) -> DiffusionModule:
    """The training module as `shd.diffusion.train` builds it (unconditional, block normalization)."""
    net_cfg = replace(
        NET_PRESETS[args.net],
        attention=args.attention,
        residual_dtype=args.residual_dtype,
        mlp_kernel=args.mlp_kernel,
        n_categories=0,
    )
    train_cfg = TrainConfig(lr=args.lr, seed=args.seed, normalization=normalizer.mode, compile=args.compile)
    module = DiffusionModule(
        asdict(net_cfg),
        asdict(ScheduleConfig()),
        asdict(train_cfg),
        layout.to_json(),
        asdict(FIELD_PRESETS[FIELD]),
        ["synthetic"],
        normalizer.mode,
    )
    module.set_normalization(normalizer)
    return module


@torch.no_grad()
def heldout_loss(
    module: DiffusionModule, flat: torch.Tensor, device: torch.device, batch: int = 128
) -> dict[str, float]:
    """Mean loss of the raw net and its EMA on fixed noise and timesteps (a CPU generator seeded per
    batch, as validation_step does), in fp32: the same computation after every run."""
    module.to(device).eval()
    out = {}
    for name, net in (("raw", module.net), ("ema", module.ema.module)):
        losses = [
            diffusion_loss(
                net,
                module.schedule,
                module.normalizer,
                flat[s : s + batch].to(device),
                None,
                generator=torch.Generator().manual_seed(s // batch),
            )
            for s in range(0, len(flat), batch)
        ]
        out[name] = float(torch.stack(losses).mean())
    return out


def diffusion_run(args: argparse.Namespace) -> None:
    """One training launch on `--devices` devices (Lightning re-runs this command once per extra rank);
    rank 0 prints one RESULT line."""
    world = args.devices
    if args.accelerator == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    pl.seed_everything(args.seed, workers=True, verbose=False)
    layout = make_layout(FIELD_PRESETS[FIELD])
    throughput = args.mode == "throughput"
    per_device = args.batch if throughput else args.batch // world
    steps = args.warmup + args.steps if throughput else args.steps
    flat = synthetic(args.vectors, layout.dim, args.seed)
    # throughput: one epoch spans every step; parity: plain epochs over the small fixed set
    repeat = math.ceil(steps * per_device * world / args.vectors) if throughput else 1
    normalizer = Normalizer.fit(flat[:1024], layout, "block")
    module = make_module(args, layout, normalizer)
    timer = StepTimer(args.warmup)  # read in throughput mode only
    # the per-step callbacks `shd` trains with: the divergence check (read every 10 steps, shd's default
    # log interval) and the throughput clock (synced only when it starts and stops)
    clock = Throughput()
    product = [FiniteLoss(args.work / "checkpoints", every=args.check_every), clock]
    trainer = pl.Trainer(
        accelerator=args.accelerator,
        devices=world,
        strategy=args.strategy,
        precision=args.precision,
        max_steps=steps,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[*product, timer],
        default_root_dir=args.work / "lightning",
    )
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=vector_data(flat, per_device, repeat, args.seed))
    if not trainer.is_global_zero:
        return
    device = trainer.strategy.root_device
    row: dict[str, Any] = {
        "mode": args.mode,
        "devices": world,
        "accelerator": args.accelerator,
        "card": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "backend": getattr(trainer.strategy, "process_group_backend", None),
        "net": args.net,
        "strategy": args.strategy,
        "attention": args.attention,
        "residual_dtype": args.residual_dtype,
        "mlp_kernel": args.mlp_kernel,
        "compile": args.compile,
        "check_every": args.check_every,
        "precision": str(trainer.precision),
        "per_device_batch": per_device,
        "global_batch": per_device * world,
        "optimizer_steps": trainer.global_step,
        "vectors": args.vectors,
        "fit_seconds": time.perf_counter() - t0,
    }
    if device.type == "cuda":
        row["max_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    if throughput:
        seconds = timer.seconds(steps)
        row.update(
            warmup_steps=args.warmup,
            timed_steps=args.steps,
            seconds=seconds,
            step_ms=1000 * seconds / args.steps,
            samples_per_s=args.steps * per_device * world / seconds,
            fit_samples_per_s=clock.samples_per_s,
        )  # shd's clock: every step, compilation included
    else:
        held = synthetic(args.heldout, layout.dim, args.seed + 1)
        losses = heldout_loss(module, held, device)
        row.update(heldout=args.heldout, val_loss=losses["raw"], val_loss_ema=losses["ema"])
    print(RESULT + json.dumps(row), flush=True)


# ---------------------------------------------------------------- diffusion: 1 and N devices


def launch_training(args: argparse.Namespace, mode: str, devices: int) -> dict[str, Any]:
    """`diffusion-run` as a fresh process (group); its rank-0 RESULT line, or what went wrong."""
    if mode == "throughput":
        batch, steps, vectors = args.batch, args.steps, args.vectors
    else:
        batch, steps, vectors = args.parity_batch, args.parity_steps, args.parity_vectors
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "diffusion-run",
        "--mode",
        mode,
        "--devices",
        str(devices),
        "--accelerator",
        args.accelerator,
        "--net",
        args.net,
        "--attention",
        args.attention,
        "--precision",
        args.precision,
        "--batch",
        str(batch),
        "--residual-dtype",
        args.residual_dtype,
        "--mlp-kernel",
        args.mlp_kernel,
        "--compile",
        args.compile,
        "--steps",
        str(steps),
        "--warmup",
        str(args.warmup),
        "--vectors",
        str(vectors),
        "--heldout",
        str(args.heldout),
        "--seed",
        str(args.seed),
        "--lr",
        str(args.lr),
        "--work",
        str(args.work),
    ]
    log = args.work / "logs" / f"diffusion_{mode}_{devices}.log"
    log.unlink(missing_ok=True)
    (status,) = finish([start(cmd, log)], args.timeout)
    found = [
        line[len(RESULT) :]
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith(RESULT)
    ]
    if found:
        return {**json.loads(found[-1]), "wall_seconds": status["seconds"]}
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return {
        "mode": mode,
        "devices": devices,
        "error": "timeout" if status["rc"] is None else f"exit code {status['rc']}",
        "log_tail": tail,
    }


def diffusion(args: argparse.Namespace) -> None:
    """Throughput, then parity, each on 1 then N devices; every row is recorded as it comes."""
    if args.parity_batch % args.devices or args.parity_vectors % args.parity_batch:
        # otherwise the global batches (and so the DistributedSampler's batches) would not match
        raise SystemExit("--parity-batch must divide by --devices and --parity-vectors by --parity-batch")
    config = {k: v for k, v in vars(args).items() if k not in ("func", "work", "measure", "step")}
    update_part(args.work, "diffusion", "config", config)
    for mode in args.measure.split(","):
        rows = []
        for n in sorted({1, args.devices}):
            row = launch_training(args, mode, n)
            print(json.dumps(row), flush=True)
            rows.append(row)
            update_part(args.work, "diffusion", mode, rows)
    update_part(args.work, "diffusion", "machine", machine())  # last: CUDA initialized in this process


# ---------------------------------------------------------------- overfit array jobs


def scratch_project(project: Path, shard_size: int | None) -> Path:
    """project/bench_multigpu: the project's params (shard size overridden) and its samples linked,
    so the timed runs never touch the project's own data/weights, metrics or MLflow store."""
    samples = (project / "data" / "samples").resolve()
    if not samples.is_dir() or not any(samples.iterdir()):
        raise SystemExit(f"{samples}: no sample set; run the sample stage in {project} first")
    scratch = project / "bench_multigpu"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "data").mkdir(parents=True)
    params = yaml.safe_load((project / "params.yaml").read_text())
    if shard_size:
        params["overfit"]["shard_size"] = shard_size
    (scratch / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (scratch / "data" / "samples").symlink_to(samples)
    return scratch


def overfit_env(index: int, processes: int, accelerator: str) -> dict[str, str]:
    """This checkout's code; one GPU per process, or on CPU an equal share of the cores."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the scratch project's own store (fresh for every run)
    if accelerator == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // processes)))
    else:
        env["CUDA_VISIBLE_DEVICES"] = str(index)
    return env


def overfit_once(scratch: Path, processes: int, args: argparse.Namespace) -> dict[str, Any]:
    """`--shard i/N` for i < N started at once into empty weights; the weights are then kept aside as
    weights-<N>proc."""
    for name in ("data/weights", "metrics", "reports", "mlruns", f"weights-{processes}proc"):
        shutil.rmtree(scratch / name, ignore_errors=True)
    logs = [args.work / "logs" / f"overfit_{processes}proc_{i}.log" for i in range(processes)]
    for log in logs:
        log.unlink(missing_ok=True)
    script = str(ROOT / "pipelines" / "overfit.py")
    procs = [
        start(
            [sys.executable, script, "--shard", f"{i}/{processes}"],
            logs[i],
            scratch,
            overfit_env(i, processes, args.accelerator),
        )
        for i in range(processes)
    ]
    status = finish(procs, args.timeout)
    wall = max(s["seconds"] for s in status)
    row: dict[str, Any] = {
        "processes": processes,
        "wall_seconds": wall,
        "process_seconds": [s["seconds"] for s in status],
        "rc": [s["rc"] for s in status],
    }
    if any(s["rc"] != 0 for s in status):
        row["log_tail"] = [log.read_text(errors="replace").strip().splitlines()[-3:] for log in logs]
    weights = scratch / "data" / "weights"
    if (weights / "manifest.json").exists():
        written = scratch / "metrics" / "overfit.json"  # by the process that wrote the manifest
        metrics = json.loads(written.read_text()) if written.exists() else {}
        kept = weights.rename(scratch / f"weights-{processes}proc")
        n = WeightSet.open(kept).manifest["n_shapes"]
        row.update(
            weights=str(kept),
            n_shapes=n,
            shapes_per_s=n / wall,
            iou_mean=metrics.get("iou_mean"),
            fit_seconds_last_process=metrics.get("seconds"),
            weight_shards=len(list(kept.glob("shard-*.safetensors"))),
        )
    return row


def compare_weights(one: Path, many: Path) -> dict[str, Any]:
    """Same layout and shape ids (and order)? Largest |difference| of the flat weights, NaNs apart."""
    a, b = WeightSet.open(one), WeightSet.open(many)
    ids_a = [r["shape_id"] for r in a.manifest["shapes"]]
    ids_b = [r["shape_id"] for r in b.manifest["shapes"]]
    same_set = set(ids_a) == set(ids_b)
    out: dict[str, Any] = {
        "same_layout": a.manifest["layout"] == b.manifest["layout"],
        "same_shape_ids": ids_a == ids_b,
        "same_shape_id_set": same_set,
        "same_status": same_set and all(a.record(s)["status"] == b.record(s)["status"] for s in ids_a),
    }
    if out["same_layout"] and same_set:
        fa, fb = a.load_flat(ids_a), b.load_flat(ids_a)
        out["max_abs_diff"] = float((fa - fb).abs().nan_to_num(0.0).max())
        out["max_abs_weight"] = float(fa.abs().nan_to_num(0.0).max())
        out["nan_mismatches"] = int((fa.isnan() != fb.isnan()).sum())
        out["identical"] = out["max_abs_diff"] == 0.0 and not out["nan_mismatches"]
    return out


def overfit(args: argparse.Namespace) -> None:
    """1 process, then N at once, in a scratch copy of the project; then the two weight sets compared."""
    scratch = scratch_project(args.project.resolve(), args.shard_size)
    config = {
        "project": str(args.project),
        "devices": args.devices,
        "accelerator": args.accelerator,
        "shard_size": args.shard_size,
        "timeout": args.timeout,
        "params": yaml.safe_load((scratch / "params.yaml").read_text())["overfit"],
    }
    update_part(args.work, "overfit", "config", config)
    rows = []
    for n in sorted({1, args.devices}):
        row = overfit_once(scratch, n, args)
        print(json.dumps(row), flush=True)
        rows.append(row)
        update_part(args.work, "overfit", "runs", rows)
    if len(rows) == 2 and all("weights" in r for r in rows):
        parity = compare_weights(Path(rows[0]["weights"]), Path(rows[1]["weights"]))
        print(json.dumps(parity), flush=True)
        update_part(args.work, "overfit", "parity", parity)
    update_part(args.work, "overfit", "machine", machine())  # last: CUDA initialized in this process


# ---------------------------------------------------------------- report


def efficiency(rows: list[dict[str, Any]], rate: str) -> None:
    """Adds `speedup` and `scaling_efficiency` = rate_N / (N x rate_1) to each row with a rate."""
    base = next((r for r in rows if r.get("devices", r.get("processes")) == 1 and r.get(rate)), None)
    for r in rows:
        if base and r.get(rate):
            r["speedup"] = r[rate] / base[rate]
            r["scaling_efficiency"] = r["speedup"] / r.get("devices", r.get("processes"))


def merge(work: Path) -> dict[str, Any]:
    """The parts of a work folder as one results payload, with efficiencies and the parity gap."""
    parts = {
        name: json.loads((work / f"{name}.json").read_text())
        for name in ("diffusion", "overfit")
        if (work / f"{name}.json").exists()
    }
    d, o = parts.get("diffusion", {}), parts.get("overfit", {})
    efficiency(d.get("throughput", []), "samples_per_s")
    efficiency(o.get("runs", []), "shapes_per_s")
    par = [r for r in d.get("parity", []) if "val_loss" in r]
    if len(par) == 2:
        d["parity_gap"] = {k: abs(par[1][k] - par[0][k]) / par[0][k] for k in ("val_loss", "val_loss_ema")}
    accelerator = d.get("config", o.get("config", {})).get("accelerator", "gpu")
    # where it was measured (the parts record it), not where the report runs
    where = d.get("machine") or o.get("machine") or machine()
    return {"device": "cpu" if accelerator == "cpu" else "cuda", "machine": where, **parts}


def card_of(r: dict[str, Any]) -> str:
    cards = [row.get("card") for row in r.get("diffusion", {}).get("throughput", []) if row.get("card")]
    m = r.get("machine", {})
    return next((c for c in cards if c), m.get("gpu") or f"CPU {m.get('cpu')} ({m.get('cores')} cores)")


def diffusion_lines(d: dict[str, Any]) -> list[str]:
    c = d["config"]
    lines = [
        f'Diffusion training, Lightning DDP (`strategy="ddp"`, also on 1 device), `{c["net"]}` net, '
        f"{c['precision']}, attention `{c['attention']}`, residual stream "
        f"{c.get('residual_dtype', 'float32')}, MLP {c.get('mlp_kernel', 'library')}, "
        f"compile {c.get('compile', 'off')}, "
        f"per-device batch {c['batch']}, "
        f"{c['steps']} timed optimizer steps after {c['warmup']} warm-up; {c['vectors']} synthetic "
        "vectors resident on each device (a batch is one index_select, so the host loader is not "
        "timed):",
        "",
    ]
    rows = [
        [
            r["devices"],
            r.get("global_batch", ""),
            fmt(r.get("samples_per_s"), ".0f"),
            fmt(r.get("step_ms"), ".1f"),
            fmt(r.get("scaling_efficiency"), ".2f"),
            fmt(r.get("max_memory_gb"), ".1f"),
            r.get("error", ""),
        ]
        for r in d.get("throughput", [])
    ]
    lines += [
        table(
            [
                "devices",
                "global batch",
                "samples/s",
                "ms/step",
                "scaling efficiency",
                "peak GB (rank 0)",
                "note",
            ],
            rows,
        ),
        "",
    ]
    par = d.get("parity", [])
    if par:
        rows = [
            [
                r["devices"],
                r.get("per_device_batch", ""),
                r.get("optimizer_steps", ""),
                fmt(r.get("val_loss"), ".5f"),
                fmt(r.get("val_loss_ema"), ".5f"),
                r.get("error", ""),
            ]
            for r in par
        ]
        lines += [
            f"Parity: seed {c['seed']}, global batch {c['parity_batch']}, {c['parity_steps']} steps on "
            f"the same {c['parity_vectors']} vectors; held-out loss of {c['heldout']} other vectors on "
            "fixed noise and timesteps (fp32, rank 0):",
            "",
            table(
                ["devices", "per-device batch", "steps", "held-out loss", "held-out loss (EMA)", "note"], rows
            ),
            "",
        ]
        if d.get("parity_gap"):
            g = d["parity_gap"]
            lines += [
                f"Relative difference N vs 1 device: {100 * g['val_loss']:.2f}% (raw), "
                f"{100 * g['val_loss_ema']:.2f}% (EMA). Same samples in each global step "
                "(DistributedSampler order), other noise and timesteps: each rank draws them from its "
                "own generator, seeded alike on every rank (as `shd.diffusion.train` does).",
                "",
            ]
    return lines


def overfit_lines(o: dict[str, Any]) -> list[str]:
    c, p = o["config"], o["config"]["params"]
    lines = [
        f"Overfit array jobs: `pipelines/overfit.py --shard i/N`, N processes started at once, one "
        f"GPU each (on CPU: a share of the cores), vs `--shard 0/1`; project `{c['project']}` "
        f"({p.get('max_steps')} steps of "
        f"{p.get('points_per_step')} points, init `{p.get('init')}`), weight shards of "
        f"{c['shard_size']} shapes. Wall time from start to the last process's exit (imports, shared "
        "init, MLflow log included):",
        "",
    ]
    rows = [
        [
            r["processes"],
            r.get("n_shapes", ""),
            r.get("weight_shards", ""),
            fmt(r.get("wall_seconds"), ".1f"),
            fmt(r.get("fit_seconds_last_process"), ".1f"),
            fmt(r.get("shapes_per_s"), ".2f"),
            fmt(r.get("scaling_efficiency"), ".2f"),
            fmt(r.get("iou_mean"), ".4f"),
            "" if all(x == 0 for x in r["rc"]) else f"rc {r['rc']}",
        ]
        for r in o.get("runs", [])
    ]
    lines += [
        table(
            [
                "processes",
                "shapes",
                "weight shards",
                "wall s",
                "fit s (last process)",
                "shapes/s",
                "scaling efficiency",
                "IoU mean",
                "note",
            ],
            rows,
        ),
        "",
    ]
    q = o.get("parity")
    if q:
        lines += [
            f"Merged N-process weight set vs 1 process: same layout {q['same_layout']}, same shape ids "
            f"(and order) {q['same_shape_ids']}, same fit status {q['same_status']}, max |weight "
            f"difference| {fmt(q.get('max_abs_diff'), '.3g')} (largest |weight| "
            f"{fmt(q.get('max_abs_weight'), '.3g')}), identical {q.get('identical')}.",
            "",
        ]
    return lines


def section(r: dict[str, Any]) -> str:
    d, o = r.get("diffusion"), r.get("overfit")
    n = (d or o or {}).get("config", {}).get("devices")
    m = r.get("machine", {})
    lines = [
        f"## Multi-device scaling on {n} x {card_of(r)} (`benchmarks/bench_multigpu.py`)",
        "",
        f"Measured {r.get('date', '')}; host {m.get('cpu')} ({m.get('cores')} cores), torch "
        f"{m.get('torch')}. Scaling efficiency = rate on N / (N x rate on 1).",
        "",
    ]
    if r.get("note"):
        lines += [r["note"], ""]
    if d and d.get("config"):
        lines += diffusion_lines(d)
    if o and o.get("config"):
        lines += overfit_lines(o)
    return "\n".join(lines)


def report(args: argparse.Namespace) -> None:
    """Merge the work folder's parts (or take a fetched results file), save, rewrite the section."""
    if args.from_json:
        results = adopt_results(args.from_json)
        name = results["benchmark"]
    else:
        merged = merge(args.work)
        name = f"multigpu_{merged['device']}"
        results = json.loads(save_json(name, merged).read_text())
    add_note(name, results, args.note)
    write_section(name, section(results))
    print(f"{RESULTS / f'{name}.json'}; BENCHMARKS.md section {name}")


# ---------------------------------------------------------------- command line


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--devices",
        type=int,
        default=torch.cuda.device_count() or 2,
        help="N: compared with 1 (GPUs, or CPU processes with --accelerator cpu)",
    )
    p.add_argument(
        "--accelerator", choices=("gpu", "cpu"), default="gpu" if torch.cuda.is_available() else "cpu"
    )
    p.add_argument(
        "--timeout", type=float, default=300, help="seconds per launch before its processes are killed"
    )
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="parts (JSON) and logs")


def _training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--net", choices=sorted(NET_PRESETS), help="default: reference (gpu), tiny (cpu)")
    p.add_argument("--attention", help="net.attention; default: efficient (gpu), auto (cpu)")
    p.add_argument("--precision", help="default: bf16-mixed (gpu), 32-true (cpu)")
    p.add_argument("--residual-dtype", default="float32", help="net.residual_dtype: float32 | autocast")
    p.add_argument("--mlp-kernel", default="library", help="net.mlp_kernel: library | triton")
    p.add_argument("--compile", default="off", help="train.compile: off | default | max-autotune-gemm | ...")
    p.add_argument("--batch", type=int, help="per-device batch (throughput); default 1024 (gpu), 16 (cpu)")
    p.add_argument("--steps", type=int, default=60, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=10, help="optimizer steps before timing")
    p.add_argument("--vectors", type=int, default=8192, help="synthetic training vectors (throughput)")
    p.add_argument("--heldout", type=int, default=512, help="held-out vectors of the parity loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=2e-4)


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    """GPU: the reference training setup; CPU: a smoke-test size."""
    if not hasattr(args, "accelerator"):  # report
        return args
    gpu = args.accelerator == "gpu"
    for key, on_gpu, on_cpu in (
        ("net", "reference", "tiny"),
        ("attention", "efficient", "auto"),
        ("precision", "bf16-mixed", "32-true"),
        ("batch", 1024, 16),
    ):
        if getattr(args, key, "absent") is None:
            setattr(args, key, on_gpu if gpu else on_cpu)
    return args


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("diffusion", help="DDP throughput and loss parity on 1 and N devices")
    _device_args(p)
    _training_args(p)
    p.add_argument("--measure", default="throughput,parity", help="throughput,parity (in this order)")
    p.add_argument("--parity-batch", type=int, default=256, help="global batch of the parity runs")
    p.add_argument("--parity-steps", type=int, default=300)
    p.add_argument("--parity-vectors", type=int, default=2048, help="training vectors of the parity runs")
    p.set_defaults(func=diffusion)
    p = sub.add_parser("diffusion-run", help="(internal) one Lightning launch; rank 0 prints a RESULT line")
    _device_args(p)
    _training_args(p)
    p.add_argument("--mode", choices=("throughput", "parity"), required=True)
    p.add_argument(
        "--check-every",
        type=int,
        default=10,
        help="steps between reads of the divergence flag (shd: train.log_every, default 10)",
    )
    p.add_argument(
        "--strategy",
        default="ddp",
        help="Lightning strategy (ddp as in the scaling runs; auto = one device as `shd` trains)",
    )
    p.set_defaults(func=diffusion_run)
    p = sub.add_parser("overfit", help="overfit stage as N array jobs vs 1 process")
    _device_args(p)
    p.add_argument(
        "--project",
        type=Path,
        default=ROOT / ".gpurun",
        help="project folder with params.yaml and data/samples",
    )
    p.add_argument(
        "--shard-size", type=int, default=8, help="overfit.shard_size of the scratch copy (0: the project's)"
    )
    p.set_defaults(func=overfit)
    p = sub.add_parser("report", help="merge the parts into results/multigpu_<device>.json + section")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK)
    p.add_argument("--from-json", help="only rewrite the section from this results file (e.g. fetched)")
    p.add_argument("--note", help="context stored with the results and shown under the section's title")
    p.set_defaults(func=report)
    return ap


def main() -> None:
    args = _defaults(parser().parse_args())
    if args.step in ("diffusion", "overfit"):  # the steps that start process groups
        signal.signal(signal.SIGTERM, _exit_on_term)
        args.work.mkdir(parents=True, exist_ok=True)
    args.func(args)


if __name__ == "__main__":
    main()
