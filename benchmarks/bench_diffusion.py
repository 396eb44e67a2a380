"""Weight-space diffusion: training throughput and model FLOP utilization, sampling cost per shape.

Rerun: `.venv/bin/python benchmarks/bench_diffusion.py [--device cuda] [--model DIR --samples DIR]`.
Writes benchmarks/results/diffusion_<cpu|cuda>.json and that section of BENCHMARKS.md
(`--from-json FILE` rewrites the section from a results file measured elsewhere, e.g. on a lent GPU).

- train: samples/s of one optimizer step exactly as training does it (`objective.diffusion_loss`,
  AdamW, gradient clipping, EMA update; bf16 autocast on CUDA), on random weight vectors of the
  field layouts; MFU = model matmul FLOPs (`train_flops_per_sample`) / the card's dense bf16 peak;
- sample: seconds per shape for DDPM-500, DDIM-50 and DDIM-10 at a fixed batch;
- 1-NNA per sampler setting, only with `--model` (a trained, exported model) and `--samples` (the
  reference clouds: the val + test splits' surface clouds); otherwise left out.

Imports neither Lightning nor MLflow, so it runs where only torch and diffusers are installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from common import add_note, adopt_results, fmt, machine, save_json, table, write_section

from shd.diffusion.compile import compile_fn
from shd.diffusion.config import NET_PRESETS, NetConfig, ScheduleConfig
from shd.diffusion.denoiser import Denoiser, train_flops_per_sample
from shd.diffusion.normalization import Normalizer
from shd.diffusion.objective import diffusion_loss, ema_of, make_optimizer, noised_loss
from shd.diffusion.sampler import WeightSampler
from shd.diffusion.schedule import Schedule
from shd.diffusion.tokens import TokenLayout
from shd.fields.config import FIELD_PRESETS
from shd.fields.layout import make_layout

# dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity)
PEAK_BF16 = {"H100 80GB HBM3": 989.4e12, "H100 SXM": 989.4e12, "H100 PCIe": 756.0e12, "H200": 989.4e12}
SETTINGS = (("ddpm", 500), ("ddim", 50), ("ddim", 10))
# (label, normalization, norm_floor) of the normalization experiment
NORM_MODES = (
    ("none", "none", 0.1),
    ("block", "block", 0.1),
    ("scalar", "scalar", 0.1),
    ("scalar, no floor", "scalar", 0.0),
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_flops(device: torch.device) -> tuple[float | None, float | None]:
    """(datasheet bf16 peak, measured 8192^3 bf16 matmul FLOP/s) on CUDA; (None, None) on CPU."""
    if device.type != "cuda":
        return None, None
    name = torch.cuda.get_device_name(device)
    sheet = next((v for k, v in PEAK_BF16.items() if k in name), None)
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return sheet, 10 * 2 * 8192**3 / (time.perf_counter() - t0)


def net_config(name: str) -> NetConfig:
    return NET_PRESETS[name]


# kernel name fragments -> where GPU time goes (first match wins)
KERNEL_KINDS = (
    ("attention", ("flash", "fmha", "attention", "sdpa", "compute_dot_do_o")),
    ("gemm", ("gemm", "xmma", "nvjet", "cutlass", "wgmma", "cublas")),
    ("layer norm", ("layer_norm",)),
    ("triton fused (compiled)", ("triton",)),
    ("optimizer, clip, EMA", ("foreach", "multi_tensor", "adam", "lerp")),
    ("copy, index, cat", ("index", "gather", "scatter", "copy", "cat", "transpose")),
)


def kind_of(kernel: str) -> str:
    name = kernel.lower()
    return next((k for k, frags in KERNEL_KINDS if any(f in name for f in frags)), "other elementwise")


def reclassify(profile: dict[str, Any]) -> dict[str, Any]:
    """Move a stored breakdown's attention kernels (among its top kernels) to "attention": results
    measured with an older table counted cuDNN's `..._sdpa_..._wgmma_...` kernels as gemm. Only that
    move: stored names are truncated, so other kinds are not re-derived."""
    kinds = dict(profile["ms_per_step"])
    for k in profile["top_kernels"]:
        new = kind_of(k["kernel"])
        if new == "attention" != k["kind"]:
            kinds[k["kind"]] -= k["ms"]
            kinds[new] = kinds.get(new, 0.0) + k["ms"]
            k["kind"] = new
    return {**profile, "ms_per_step": kinds}


def kernel_breakdown(prof, steps: int) -> dict[str, Any]:
    """GPU ms per step by kind of kernel, and the heaviest kernels (from torch.profiler)."""
    kinds: dict[str, float] = {}
    kernels = []
    for e in prof.key_averages():
        us = getattr(e, "self_device_time_total", 0.0) or getattr(e, "self_cuda_time_total", 0.0)
        ms = us / 1000 / steps
        if ms <= 0:
            continue
        kind = kind_of(e.key)
        kinds[kind] = kinds.get(kind, 0.0) + ms
        kernels.append((ms, e.key[:90], kind))
    kernels.sort(reverse=True)
    return {
        "ms_per_step": kinds,
        "gpu_ms_per_step": sum(kinds.values()),
        "top_kernels": [{"ms": ms, "kernel": k, "kind": kind} for ms, k, kind in kernels[:20]],
    }


def train_throughput(
    net_name: str,
    field: str,
    batch: int,
    device: torch.device,
    steps: int,
    compile_net: bool = False,
    warmup: int = 3,
    profile: bool = False,
    attention: str = "auto",
    compile_mode: str = "default",
    residual_dtype: str = "float32",
    mlp_kernel: str = "library",
) -> dict[str, Any]:
    """Samples/s of full training steps (loss, backward, clip, AdamW, EMA) at one batch size;
    with `profile`, a kernel breakdown of extra steps (the timed ones run unprofiled)."""
    torch.manual_seed(0)
    layout = make_layout(FIELD_PRESETS[field])
    tokens = TokenLayout(layout)
    cfg = replace(
        net_config(net_name), attention=attention, residual_dtype=residual_dtype, mlp_kernel=mlp_kernel
    )
    net = Denoiser(cfg, tokens).to(device)
    ema = ema_of(net, 0.999)
    loss_fn = compile_fn(noised_loss, compile_mode if compile_net else "off")  # as train.compile does
    opt = make_optimizer(net, 2e-4, 0.0, device)
    schedule = Schedule(ScheduleConfig()).to(device)
    norm = Normalizer(torch.zeros(layout.dim), torch.ones(layout.dim)).to(device)
    flat = torch.randn(batch, layout.dim, device=device) * 0.1
    bf16 = device.type == "cuda"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = diffusion_loss(net, schedule, norm, flat, None, loss_fn=loss_fn)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema.update_parameters(net)

    t_compile = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    warm_s = time.perf_counter() - t_compile
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - t0
    rate = steps * batch / seconds
    flops = train_flops_per_sample(cfg, tokens)
    out = {
        "net": net_name,
        "field": field,
        "tokens": tokens.n_tokens + 1,
        "batch": batch,
        "precision": "bf16-mixed" if bf16 else "fp32",
        "compiled": compile_net,
        "attention": attention,
        "compile_mode": compile_mode if compile_net else None,
        "residual_dtype": residual_dtype,
        "mlp_kernel": mlp_kernel,
        "steps": steps,
        "step_ms": 1000 * seconds / steps,
        "samples_per_s": rate,
        "tflops": rate * flops / 1e12,
        "gflop_per_sample": flops / 1e9,
        "params": sum(p.numel() for p in net.parameters()),
        "warmup_s": warm_s,
    }
    if device.type == "cuda":
        out["max_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
        torch.cuda.reset_peak_memory_stats(device)
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as profiler

        activities = [ProfilerActivity.CUDA] if device.type == "cuda" else [ProfilerActivity.CPU]
        with profiler(activities=activities) as prof:
            for _ in range(5):
                step()
            sync(device)
        out["profile"] = kernel_breakdown(prof, 5)
    return out


def sampling_time(
    net_name: str, field: str, n: int, device: torch.device, settings=SETTINGS
) -> list[dict[str, Any]]:
    """Seconds per shape of each sampler setting for a batch of n (untrained weights: cost only)."""
    layout = make_layout(FIELD_PRESETS[field])
    net = Denoiser(net_config(net_name), TokenLayout(layout))
    norm = Normalizer(torch.zeros(layout.dim), torch.ones(layout.dim))
    sampler = WeightSampler(net, Schedule(ScheduleConfig()), norm, FIELD_PRESETS[field], (), device)
    sampler.sample(n, steps=2)  # warm-up
    rows = []
    for method, steps in settings:
        sync(device)
        t0 = time.perf_counter()
        sampler.sample(n, steps=steps, method=method)
        sync(device)
        s = time.perf_counter() - t0
        rows.append(
            {
                "net": net_name,
                "field": field,
                "method": method,
                "steps": steps,
                "batch": n,
                "seconds": s,
                "ms_per_shape": 1000 * s / n,
            }
        )
    return rows


def nna_per_setting(model_dir: str, sample_dir: str, resolution: int, device: torch.device) -> list[dict]:
    """1-NNA (and MMD, COV) of a trained model per sampler setting vs the val + test surface clouds."""
    from shd.data.sample_store import SampleSet
    from shd.diffusion.api import load_model
    from shd.diffusion.evaluate import generation_report

    samples = SampleSet.open(sample_dir)
    ids = samples.ids(split="val") + samples.ids(split="test")
    reference = samples.load(ids, ("surface",))["surface"]
    sampler = load_model(model_dir, device)
    rows = []
    for method, steps in SETTINGS:
        rep = generation_report(
            sampler, reference, len(ids), steps=steps, method=method, resolution=resolution, seed=0
        )
        keys = (
            "method",
            "steps",
            "n_samples",
            "n_usable",
            "mmd",
            "cov",
            "1-nna",
            "mesh_status",
            "resolution",
            "sample_seconds",
            "normalization",
        )
        rows.append({k: rep.get(k) for k in keys})
    return rows


@torch.no_grad()
def weight_space_mse(sampler: WeightSampler, flat: torch.Tensor, ts=(50, 250, 450)) -> dict[str, float]:
    """x0 error in raw weight units at fixed timesteps: comparable across normalizations (the training
    losses are not, each being in its own normalized space)."""
    x0 = sampler.normalizer.normalize(flat.to(sampler.device))
    out = {}
    for t in ts:
        gen = torch.Generator().manual_seed(t)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        tt = torch.full((len(x0),), t, device=x0.device)
        xt = sampler.schedule.add_noise(x0, noise, tt)
        pred = sampler.net(xt, tt).float()
        abar = sampler.schedule.alphas_cumprod[t].to(x0.device)
        if sampler.schedule.cfg.prediction == "eps":
            pred = (xt - (1 - abar).sqrt() * pred) / abar.sqrt()
        elif sampler.schedule.cfg.prediction == "v":
            pred = abar.sqrt() * xt - (1 - abar).sqrt() * pred
        out[f"t{t}"] = float(((sampler.normalizer.denormalize(pred) - flat.to(x0.device)) ** 2).mean())
    return out


def normalization_experiment(weights: str, sample_dir: str, out: Path, steps: int, resolution: int) -> dict:
    """Train the same small model with each normalization on one weight set and compare (CPU-sized)."""
    import tempfile

    from shd.data.sample_store import SampleSet
    from shd.diffusion.api import load_model
    from shd.diffusion.evaluate import generation_report
    from shd.diffusion.train import train
    from shd.fields.weight_set import WeightSet

    ws = WeightSet.open(weights)
    samples = SampleSet.open(sample_dir)
    val_flat = ws.load_flat(ws.ids(split="val"))
    held_out = samples.ids(split="val") + samples.ids(split="test")
    refs = {
        "val+test": samples.load(held_out, ("surface",))["surface"],
        "train": samples.load(ws.ids(split="train"), ("surface",))["surface"],
    }
    n_train = len(ws.ids(split="train"))
    batch = 16
    repeat = max(1, 160 // n_train)  # ~10 steps an epoch
    epochs = max(1, steps // max(1, (n_train * repeat + batch - 1) // batch))
    rows = []
    with tempfile.TemporaryDirectory() as store:
        for label, mode, floor in NORM_MODES:
            cfg = {
                "net": "small",
                "train": {
                    "normalization": mode,
                    "norm_floor": floor,
                    "batch_size": batch,
                    "lr": 5e-4,
                    "epoch_repeat": repeat,
                    "max_epochs": epochs,
                    "val_every": 0,
                    "ema_decay": 0.995,
                    "checkpoint_every": epochs,
                    "log_every": 50,
                },
            }
            folder = out / label.replace(" ", "_").replace(",", "")
            summary = train(weights, cfg, folder, tracking_root=store, resume=False)
            sampler = load_model(summary["model_dir"], "cpu")
            z = sampler.normalizer.normalize(val_flat)
            row = {
                "normalization": label,
                "steps": summary["global_step"],
                "seconds": summary["seconds"],
                "model_dir": summary["model_dir"],
                "train_loss_normalized_space": summary["train_loss"],
                "val_mean_z2": float((z**2).mean()),
                "val_max_abs_z": float(z.abs().max()),
                "val_x0_mse_weight_space": weight_space_mse(sampler, val_flat),
            }
            for name, ref in refs.items():
                rep = generation_report(sampler, ref, len(ref), steps=50, resolution=resolution, seed=0)
                keys = ("n_samples", "n_usable", "mmd", "cov", "1-nna")
                row[f"gen_vs_{name}"] = {k: rep.get(k) for k in keys}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return {
        "weights": weights,
        "n_train": n_train,
        "net": "small",
        "batch": batch,
        "resolution": resolution,
        "rows": rows,
    }


def timed_train(
    results: dict[str, Any],
    plan: list[tuple],
    device: torch.device,
    steps: int,
    progress: Callable[[dict], None],
) -> None:
    sheet, measured = results["peak_bf16_datasheet"], results["peak_bf16_measured_matmul"]
    for net_name, field, batch, comp, prof, *options in plan:
        # optional: attention, compile mode, residual dtype, MLP kernel
        kernel, mode, residual, mlp = (*options, *("auto", "default", "float32", "library")[len(options) :])
        n_steps = 3 if device.type == "cpu" and net_name == "reference" else steps  # seconds a step on CPU
        try:
            row = train_throughput(
                net_name,
                field,
                batch,
                device,
                n_steps,
                comp,
                profile=prof,
                attention=kernel,
                compile_mode=mode,
                residual_dtype=residual,
                mlp_kernel=mlp,
            )
        except torch.OutOfMemoryError as exc:
            row = {"net": net_name, "field": field, "batch": batch, "compiled": comp, "error": str(exc)[:200]}
        if sheet and "tflops" in row:
            row["mfu"] = row["tflops"] * 1e12 / sheet
            row["mfu_vs_measured_matmul"] = row["tflops"] * 1e12 / measured
        print(json.dumps(row), flush=True)
        results["train"].append(row)
        progress(results)
        if device.type == "cuda":
            torch.cuda.empty_cache()


def run(
    device: torch.device,
    quick: bool,
    model: str | None,
    samples: str | None,
    resolution: int,
    compile_net: bool,
    progress: Callable[[dict], None] = lambda r: None,
    attention: tuple[str, ...] = ("auto",),
    mfu_only: bool = False,
    compile_modes: tuple[str, ...] = ("default",),
    residual_dtypes: tuple[str, ...] = ("float32",),
    double_batch: bool = True,
    rows: list[tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """All measurements of this device; `progress(results)` after each row (a killed run keeps them)."""
    sheet, measured = peak_flops(device)
    results: dict[str, Any] = {
        "device": device.type,
        "peak_bf16_datasheet": sheet,
        "peak_bf16_measured_matmul": measured,
        "train": [],
        "sample": [],
    }
    if device.type == "cuda":
        plan = [("reference", "moe_equal", b, False, b == 4096) for b in (512, 2048, 4096)]
        plan += [("reference", "single", 4096, False, False), ("tiny", "moe_equal", 4096, False, False)]
        # one compiled row per attention kernel (profiled); the best kernel also at twice the batch
        variants = rows or [(m, r) for m in compile_modes for r in residual_dtypes]
        compiled = (
            [("reference", "moe_equal", 4096, True, True, k, *v) for v in variants for k in attention]
            if compile_net
            else []
        )
        steps, n_sample = 20, 64
        sample_plan = [("tiny", "moe_equal", SETTINGS), ("reference", "moe_equal", SETTINGS)]
    else:
        plan = [
            ("tiny", "moe_equal", 32, False, False),
            ("small", "moe_equal", 32, False, False),
            ("reference", "moe_equal", 8, False, False),
        ]
        compiled = []
        steps, n_sample = (3 if quick else 10), 8
        # the reference net's 500 CPU steps take minutes: DDIM only
        sample_plan = [("tiny", "moe_equal", SETTINGS), ("reference", "moe_equal", SETTINGS[1:])]
    if mfu_only:
        plan, sample_plan = [], []
    timed_train(results, plan, device, steps, progress)
    for net_name, field, settings in sample_plan:
        for row in sampling_time(net_name, field, n_sample, device, settings):
            print(json.dumps(row), flush=True)
            results["sample"].append(row)
            progress(results)
    timed_train(results, compiled, device, steps, progress)  # last: compilation takes a minute or more
    done = [r for r in results["train"] if r.get("compiled") and "mfu" in r]
    if done and device.type == "cuda" and double_batch:
        best = max(done, key=lambda r: r["mfu"])
        timed_train(
            results,
            [
                (
                    "reference",
                    "moe_equal",
                    8192,
                    True,
                    False,
                    best["attention"],
                    best.get("compile_mode") or "default",
                    best.get("residual_dtype", "float32"),
                    best.get("mlp_kernel", "library"),
                )
            ],
            device,
            steps,
            progress,
        )
    if model and samples:
        results["nna"] = nna_per_setting(model, samples, resolution, device)
        results["nna_model"] = model
    return results


def _compiled(row: dict[str, Any]) -> str:
    """ "no", "yes" (torch.compile's default mode) or the mode's name."""
    if not row.get("compiled"):
        return "no"
    return "yes" if (row.get("compile_mode") or "default") == "default" else row["compile_mode"]


def section(results: dict[str, Any]) -> str:
    m = results.get("machine", machine())
    where = m.get("gpu") or f"CPU {m.get('cpu')} ({m.get('cores')} cores)"
    lines = [f"## Diffusion on {where} (`benchmarks/bench_diffusion.py`)", ""]
    if results.get("threads"):
        lines += [
            f"torch threads: {results['threads']}; load average before / after: "
            f"{results['load_average_before'][0]:.1f} / {results['load_average_after'][0]:.1f} "
            "(a shared machine: other jobs ran alongside).",
            "",
        ]
    if results.get("note"):
        lines += [results["note"], ""]
    if results.get("peak_bf16_datasheet"):
        lines.append(
            f"bf16 peak: datasheet {results['peak_bf16_datasheet'] / 1e12:.0f} TFLOP/s, measured "
            f"8192^3 matmul {results['peak_bf16_measured_matmul'] / 1e12:.0f} TFLOP/s. MFU = model "
            "matmul FLOPs (6 x params x tokens + attention) / datasheet peak."
        )
        lines.append("")
    rows = [
        [
            r["net"],
            r["field"],
            r.get("tokens", ""),
            r["batch"],
            r.get("precision", ""),
            _compiled(r),
            r.get("attention", "auto"),
            r.get("residual_dtype", "float32"),
            r.get("mlp_kernel", "library"),
            fmt(r.get("samples_per_s"), ".0f"),
            fmt(r.get("step_ms"), ".1f"),
            fmt(r.get("tflops"), ".3g"),
            fmt(100 * r["mfu"] if "mfu" in r else None, ".1f"),
            r.get("error", "")[:40] or (f"run {r['run']}" if r.get("run") else ""),
        ]
        for r in results["train"]
    ]
    lines += [
        "Training step (loss, backward, clip, AdamW, EMA):",
        "",
        table(
            [
                "net",
                "field",
                "tokens",
                "batch",
                "precision",
                "compiled",
                "attention",
                "residual",
                "MLP",
                "samples/s",
                "ms/step",
                "TFLOP/s",
                "MFU %",
                "note",
            ],
            rows,
        ),
        "",
    ]
    for r in results["train"]:
        if r.get("profile"):
            prof = reclassify(r["profile"])
            total = prof["gpu_ms_per_step"]
            rows = [
                [kind, f"{ms:.1f}", f"{100 * ms / total:.0f}%"]
                for kind, ms in sorted(prof["ms_per_step"].items(), key=lambda kv: -kv[1])
            ]
            lines += [
                f"GPU time of one step, {r['net']} net, batch {r['batch']}, "
                f"{'eager' if not r.get('compiled') else 'compiled'}"
                f"{'' if _compiled(r) in ('no', 'yes') else ' (' + _compiled(r) + ')'}, "
                f"attention {r.get('attention', 'auto')}, residual "
                f"{r.get('residual_dtype', 'float32')}, MLP {r.get('mlp_kernel', 'library')} "
                f"(torch.profiler{'; run ' + r['run'] if r.get('run') else ''}):",
                "",
                table(["kernels", "ms / step", "share"], rows),
                "",
            ]
    if not results["sample"]:  # --mfu-only: the training rows are the whole result
        return "\n".join(lines)
    rows = [
        [r["net"], f"{r['method'].upper()}-{r['steps']}", r["batch"], f"{r['ms_per_shape']:.2f}"]
        for r in results["sample"]
    ]
    lines += [
        "Sampling cost (batch of shapes at once):",
        "",
        table(["net", "sampler", "batch", "ms / shape"], rows),
        "",
    ]
    if results.get("nna"):
        rows = [
            [
                f"{r['method'].upper()}-{r['steps']}",
                r["n_samples"],
                r["n_usable"],
                fmt(r["mmd"], ".4f"),
                fmt(r["cov"], ".2f"),
                fmt(r["1-nna"], ".3f"),
            ]
            for r in results["nna"]
        ]
        lines += [
            f"Sampler settings of the trained model `{results.get('nna_model')}` against the val + "
            f"test surface clouds (resolution {results['nna'][0]['resolution']}, normalization "
            f"{results['nna'][0]['normalization']}):",
            "",
            table(["sampler", "samples", "meshed", "MMD", "COV", "1-NNA"], rows),
        ]
    else:
        lines.append("1-NNA per sampler setting: not measured here (no trained model given).")
    if results.get("normalization"):
        ne = results["normalization"]
        rows = []
        for r in ne["rows"]:
            mse = r["val_x0_mse_weight_space"]
            rows.append(
                [
                    r["normalization"],
                    r["steps"],
                    f"{r['val_mean_z2']:.3g} / {r['val_max_abs_z']:.3g}",
                    *(f"{v:.2e}" for v in mse.values()),
                ]
                + [
                    f"{fmt(g['mmd'], '.4f')} / {fmt(g['cov'], '.2f')} / {fmt(g['1-nna'], '.3f')} "
                    f"({g['n_usable']}/{g['n_samples']} meshed)"
                    for g in (r["gen_vs_val+test"], r["gen_vs_train"])
                ]
            )
        ts = list(ne["rows"][0]["val_x0_mse_weight_space"])
        lines += [
            "",
            f"Normalization (same `{ne['net']}` net, {ne['n_train']} training fits of "
            f"`{ne['weights']}`, batch {ne['batch']}, DDIM-50, resolution {ne['resolution']}): x0 MSE "
            "of val weights in raw units at fixed t, and MMD / COV / 1-NNA of as many samples as "
            'references; scalar floors: std >= 0.1 x block std ("no floor": 1e-6):',
            "",
            table(
                [
                    "normalization",
                    "steps",
                    "val z^2 mean / max abs z",
                    *[f"val x0 MSE {t}" for t in ts],
                    "vs val+test",
                    "vs train",
                ],
                rows,
            ),
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd nets (CUDA)")
    ap.add_argument(
        "--attention",
        default="auto",
        help="attention kernels to time compiled: auto,flash,efficient,cudnn,matmul,triton",
    )
    ap.add_argument(
        "--compile-mode",
        default="default",
        help="torch.compile modes of the compiled rows: default,max-autotune-no-cudagraphs,...",
    )
    ap.add_argument(
        "--residual-dtype",
        default="float32",
        help="residual stream dtypes of the compiled rows: float32,autocast",
    )
    ap.add_argument(
        "--rows", help="compiled rows as MODE:RESIDUAL[:MLP_KERNEL],... instead of every mode x dtype"
    )
    ap.add_argument(
        "--no-double-batch", action="store_true", help="skip the best compiled row's repeat at batch 8192"
    )
    ap.add_argument("--mfu-only", action="store_true", help="only the compiled training rows")
    ap.add_argument("--model", help="exported model folder, for 1-NNA per sampler setting")
    ap.add_argument("--samples", help="sample set with the reference surface clouds")
    ap.add_argument("--resolution", type=int, default=64, help="meshing resolution for 1-NNA")
    ap.add_argument(
        "--norm-experiment",
        metavar="WEIGHTS",
        help="also train a small model per normalization on this weight set (needs --samples)",
    )
    ap.add_argument("--norm-steps", type=int, default=2000, help="optimizer steps per normalization")
    ap.add_argument(
        "--keep-models",
        default="models/bench_diffusion",
        help="where the normalization experiment leaves its models",
    )
    ap.add_argument("--out-dir", help="also copy the results JSON here")
    ap.add_argument("--note", help="context stored with the results and shown under the section's title")
    ap.add_argument("--from-json", help="only rewrite the BENCHMARKS.md section from this results file")
    args = ap.parse_args()
    if args.from_json:
        results = adopt_results(args.from_json)
        name = results["benchmark"]
    else:
        device = torch.device(args.device)
        if args.threads:
            torch.set_num_threads(args.threads)
        load_before = os.getloadavg()  # other jobs on a shared machine skew CPU figures: recorded
        partial = Path(args.out_dir) / "partial.json" if args.out_dir else None
        results = run(
            device,
            args.quick,
            args.model,
            args.samples,
            args.resolution,
            args.compile,
            lambda r: partial.write_text(json.dumps(r, indent=1)) if partial else None,
            attention=tuple(args.attention.split(",")),
            mfu_only=args.mfu_only,
            compile_modes=tuple(args.compile_mode.split(",")),
            residual_dtypes=tuple(args.residual_dtype.split(",")),
            double_batch=not args.no_double_batch,
            rows=[tuple(v.split(":")) for v in args.rows.split(",")] if args.rows else None,
        )
        results["threads"] = torch.get_num_threads()
        results["load_average_before"] = load_before
        if args.norm_experiment:
            ne = normalization_experiment(
                args.norm_experiment, args.samples, Path(args.keep_models), args.norm_steps, args.resolution
            )
            results["normalization"] = ne
            if not args.model:  # sampler settings on the best model: 1-NNA vs train closest to 0.5
                best = min(ne["rows"], key=lambda r: abs((r["gen_vs_train"]["1-nna"] or 1.0) - 0.5))
                model = best["model_dir"]
                results["nna"] = nna_per_setting(model, args.samples, args.resolution, device)
                results["nna_model"] = model
        results["load_average_after"] = os.getloadavg()
        name = f"diffusion_{device.type}" + ("_attention" if args.mfu_only else "")
        path = save_json(name, results)
        results = json.loads(path.read_text())
        if args.out_dir:
            shutil.copy(path, Path(args.out_dir) / path.name)
    add_note(name, results, args.note)
    write_section(name, section(results))


if __name__ == "__main__":
    main()
