"""Training schedule for wall-clock time: quality against training seconds, per schedule, on one weight set.

Each schedule (batch size, lr with its warmup and decay, EMA decay) trains the denoiser from the same seeded
initialization on the same train split for a fixed budget of training wall time; every `--eval-every` seconds
of training the clock stops and the EMA net is scored like the training's generation check: DDIM samples,
marching cubes at a cheap resolution, MMD / COV / 1-NNA against a fixed subset of the val split (as many
references as samples). The curve (val 1-NNA against training seconds) says which schedule reaches the best
1-NNA soonest; the winner becomes the GPU profile's `diffusion.train` default.

The step is the training step of `shd.diffusion.objective` (noising, loss, clip 1.0, AdamW, EMA with warmup),
bf16 autocast on CUDA, batches drawn uniformly with replacement on the device. `--mode graph` (the CUDA
default) captures the whole step (batch draw, forward, backward, clip, fused AdamW with the lr in a device
tensor, EMA) in one CUDA graph: batch 32 is launch-bound (~16 steps/s through Lightning, BENCHMARKS.md
pipeline_cuda), and a replay launches it at once. `compile`: torch.compile of the loss as train.compile does;
`eager`: neither (CPU). Warmup/capture/compile seconds are reported beside the curve, not in it.

GPU (one H100, ~6 minutes for the five default schedules at --budget-s 45), from the repository root
(PYTHONPATH=src):
    python benchmarks/bench_schedule.py --device cuda --weights runs/shapenet-gpu/data/weights \
        --samples runs/shapenet-gpu/data/samples --out-dir $OUT --commit <sha>
Back here: python benchmarks/bench_schedule.py --from-json FETCHED/schedule_cuda.json
(copies it to benchmarks/results/, writes the BENCHMARKS.md section `schedule_cuda` and schedule_cuda.png).
Schedules: `--plans FILE.json` (a list of {name, batch, lr, warmup, lr_schedule, ema_decay}).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from common import RESULTS, ROOT, adopt_results, fmt, machine, table, write_section

from shd.diffusion.compile import compile_fn
from shd.diffusion.config import LR_SCHEDULES, NET_PRESETS, DiffusionConfig
from shd.diffusion.datamodule import categories_of, load_split
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.evaluate import generation_report, reference_clouds
from shd.diffusion.normalization import Normalizer
from shd.diffusion.objective import diffusion_loss, ema_of, lr_factor, noised_loss
from shd.diffusion.sampler import WeightSampler
from shd.diffusion.schedule import Schedule
from shd.diffusion.tokens import TokenLayout
from shd.fields.weight_set import WeightSet

MODES = ("graph", "compile", "eager")


@dataclass(frozen=True)
class Plan:
    """One training schedule. lr scaling rules from the reference's 2e-4 at batch 32: sqrt (lr x sqrt(k))
    and linear (lr x k) for a batch k times larger."""

    name: str
    batch: int
    lr: float
    warmup: int = 0
    lr_schedule: str = "constant"
    ema_decay: float = 0.999

    def __post_init__(self) -> None:
        if self.batch < 1 or not self.lr > 0 or self.warmup < 0 or not 0 < self.ema_decay < 1:
            raise ValueError(f"plan {self.name!r}: batch >= 1, lr > 0, warmup >= 0, 0 < ema_decay < 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"plan {self.name!r}: lr_schedule one of {LR_SCHEDULES}")


def scaled_lr(batch: int, rule: str, base_lr: float = 2e-4, base_batch: int = 32) -> float:
    return base_lr * (batch / base_batch) ** (0.5 if rule == "sqrt" else 1.0)


DEFAULT_PLANS = (
    Plan("reference b32", 32, 2e-4),
    Plan("b512 sqrt", 512, scaled_lr(512, "sqrt"), warmup=200, lr_schedule="cosine"),
    Plan("b2048 sqrt", 2048, scaled_lr(2048, "sqrt"), warmup=300, lr_schedule="cosine"),
    Plan(
        "b2048 sqrt ema.9995",
        2048,
        scaled_lr(2048, "sqrt"),
        warmup=300,
        lr_schedule="cosine",
        ema_decay=0.9995,
    ),
    Plan("b1024 linear", 1024, scaled_lr(1024, "linear"), warmup=500, lr_schedule="cosine"),
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    """Model, EMA, optimizer and one training step of a plan, eager, compiled or as a CUDA graph replay."""

    def __init__(
        self,
        cfg: DiffusionConfig,
        tokens: TokenLayout,
        normalizer: Normalizer,
        train_flat: torch.Tensor,
        plan: Plan,
        device: torch.device,
        mode: str,
        seed: int = 0,
    ):
        torch.manual_seed(seed)
        self.device, self.plan, self.mode = device, plan, mode
        self.net = Denoiser(cfg.net, tokens).to(device)
        self.ema = ema_of(self.net, plan.ema_decay)
        self.schedule = Schedule(cfg.schedule).to(device)
        self.normalizer = normalizer.to(device)
        self.flat = train_flat.to(device)
        self.bf16 = device.type == "cuda"
        self.graphed = mode == "graph"
        # the lr lives in a device tensor under a CUDA graph (a float would be baked into the capture)
        self.lr = torch.tensor(plan.lr, device=device) if self.graphed else plan.lr
        cuda = device.type == "cuda"
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=self.lr, weight_decay=0.0, fused=cuda, capturable=self.graphed
        )
        self.loss_fn = compile_fn(noised_loss, "default" if mode == "compile" else "off")
        self.initial = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        self.graph: torch.cuda.CUDAGraph | None = None
        self.loss = torch.zeros((), device=device)

    def _body(self) -> torch.Tensor:
        rows = torch.randint(0, len(self.flat), (self.plan.batch,), device=self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            loss = diffusion_loss(
                self.net,
                self.schedule,
                self.normalizer,
                self.flat.index_select(0, rows),
                None,
                loss_fn=self.loss_fn,
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        self.ema.update_parameters(self.net)
        return loss.detach()

    def set_lr(self, value: float) -> None:
        if self.graphed:
            self.lr.fill_(value)
        else:
            for group in self.opt.param_groups:
                group["lr"] = value

    def step(self) -> None:
        if self.graph is not None:
            self.graph.replay()
            return
        self.opt.zero_grad(set_to_none=True)
        self.loss = self._body()

    def warm_up(self, steps: int = 3) -> None:
        """First steps (optimizer state, compilation) and, in graph mode, the capture of one whole step."""
        if not self.graphed:
            for _ in range(steps):
                self.step()
            sync(self.device)
            return
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(steps):
                self.opt.zero_grad(set_to_none=True)
                self._body()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.opt.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = self._body()
        sync(self.device)

    @torch.no_grad()
    def reset(self) -> None:
        """Back to the seeded initialization in place (a captured graph keeps its tensors): weights, EMA,
        optimizer moments and step counts."""
        for key, value in self.net.state_dict().items():
            value.copy_(self.initial[key])
        for avg, p in zip(self.ema.module.parameters(), self.net.parameters(), strict=True):
            avg.copy_(p)
        self.ema.n_averaged.zero_()
        for state in self.opt.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.zero_()


def score(trainer: Trainer, field, reference, n: int, steps: int, resolution: int) -> dict[str, Any]:
    sampler = WeightSampler(
        trainer.ema.module, trainer.schedule, trainer.normalizer, field, (), trainer.device
    )
    rep = generation_report(sampler, reference, n, steps=steps, resolution=resolution, seed=0)
    return {k: rep.get(k) for k in ("mmd", "cov", "1-nna", "n_usable", "seconds")}


def run_plan(
    plan: Plan,
    cfg: DiffusionConfig,
    tokens: TokenLayout,
    normalizer: Normalizer,
    train_flat: torch.Tensor,
    field,
    reference,
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, Any]:
    """Train one plan for `budget_s` seconds of training wall time, scoring every `eval_every` seconds."""
    mode = args.mode if device.type == "cuda" else "eager"
    row: dict[str, Any] = {**asdict(plan), "mode": mode, "budget_s": args.budget_s, "curve": []}
    t0 = time.perf_counter()
    trainer = Trainer(cfg, tokens, normalizer, train_flat, plan, device, mode, args.seed)
    try:
        trainer.warm_up()
    except RuntimeError as exc:  # a capture that failed: this plan runs eager, and the row says why
        if mode != "graph":
            raise
        row["graph_error"] = (
            str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        )
        row["mode"] = mode = "eager"
        del trainer
        trainer = Trainer(cfg, tokens, normalizer, train_flat, plan, device, mode, args.seed)
        trainer.warm_up()
    # step time, to size the decay over the budget and the steps between clock reads
    calib = max(2, args.calibration_steps)
    t1 = time.perf_counter()
    for _ in range(calib):
        trainer.step()
    sync(device)
    step_s = (time.perf_counter() - t1) / calib
    row["warmup_s"] = time.perf_counter() - t0
    row["step_ms"] = 1000 * step_s
    row["samples_per_s"] = plan.batch / step_s
    total = max(plan.warmup + 1, int(args.budget_s / step_s))
    if args.max_steps:
        total = min(total, args.max_steps)
    row["planned_steps"] = total
    trainer.reset()
    chunk = max(1, min(total, int(0.25 / step_s)))  # clock reads (syncs) about 4 times a second
    train_s, step, next_eval = 0.0, 0, args.eval_every
    while step < total and train_s < args.budget_s:
        start = time.perf_counter()
        for _ in range(min(chunk, total - step)):
            trainer.set_lr(plan.lr * lr_factor(step, plan.lr_schedule, plan.warmup, total))
            trainer.step()
            step += 1
        sync(device)
        train_s += time.perf_counter() - start
        if train_s >= next_eval or step >= total or train_s >= args.budget_s:
            point = {
                "train_s": train_s,
                "step": step,
                "samples": step * plan.batch,
                "lr": plan.lr * lr_factor(step, plan.lr_schedule, plan.warmup, total),
                "loss": float(trainer.loss),
            }
            if not math.isfinite(point["loss"]):
                row["diverged_at_step"] = step
                row["curve"].append(point)
                break
            point.update(score(trainer, field, reference, args.val_samples, args.val_steps, args.resolution))
            row["curve"].append(point)
            print(json.dumps({"plan": plan.name, **point}), flush=True)
            while next_eval <= train_s:
                next_eval += args.eval_every
    row["steps"] = step
    row["train_s"] = train_s
    row["wall_s"] = time.perf_counter() - t0
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def load_plans(path: str | None) -> list[Plan]:
    if path is None:
        return list(DEFAULT_PLANS)
    return [Plan(**item) for item in json.loads(Path(path).read_text())]


def diffusion_config(params: str, net: str | None) -> DiffusionConfig:
    """The denoiser, noise schedule and weight normalization of a params file (the GPU profile's by default);
    `net` swaps in a preset (the CPU test's tiny net)."""
    section = dict(yaml.safe_load(Path(params).read_text()).get("diffusion") or {})
    if net is not None:
        if net not in NET_PRESETS:
            raise SystemExit(f"--net: one of {sorted(NET_PRESETS)}, got {net!r}")
        section["net"] = net
    return DiffusionConfig.from_dict(section)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The winner: the lowest 1-NNA reached (ties: lower MMD), and how soon each plan got within 0.02 of its
    own best (the 'best 1-NNA per minute' question)."""
    best = None
    for row in rows:
        scored = [p for p in row["curve"] if p.get("1-nna") is not None]
        if not scored:
            continue
        top = min(scored, key=lambda p: (p["1-nna"], p.get("mmd") or math.inf))
        row["best"] = {k: top.get(k) for k in ("1-nna", "mmd", "cov", "train_s", "step")}
        row["seconds_to_best"] = next(p["train_s"] for p in scored if p["1-nna"] <= top["1-nna"] + 0.02)
        key = (top["1-nna"], top.get("mmd") or math.inf)
        if best is None or key < best[0]:
            best = (key, row["name"])
    return {"winner": best[1] if best else None}


def plot(results: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for row in results["plans"]:
        pts = [p for p in row["curve"] if p.get("1-nna") is not None]
        xs = [p["train_s"] for p in pts]
        axes[0].plot(xs, [p["1-nna"] for p in pts], marker="o", label=row["name"])
        axes[1].plot(xs, [p["mmd"] for p in pts], marker="o", label=row["name"])
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].set(xlabel="training seconds", ylabel="val 1-NNA (0.5 ideal)")
    axes[1].set(xlabel="training seconds", ylabel="val MMD (CD)", yscale="log")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{results['machine'].get('gpu', 'CPU')}: quality vs training time per schedule", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def section(results: dict[str, Any], png: str) -> str:
    m, s = results["machine"], results["setup"]
    net = s["net"]
    lines = [
        f"## Training schedule for wall-clock time (`benchmarks/bench_schedule.py`, {m.get('gpu') or 'CPU'})",
        "",
        f"Weight set `{s['weights']}`: {s['n_train']} train fits, {s['n_val_references']} val references "
        f"({s['reference_source']}); net {net['depth']} x {net['width']}, {net['heads']} heads "
        f"(attention {net['attention']}); every schedule from the same seeded initialization, "
        f"{s['budget_s']:.0f} s of training each (mode {s['mode']}), scored every {s['eval_every']:g} s "
        "with "
        f"{s['val_samples']} DDIM-{s['val_steps']} samples meshed at {s['resolution']}^3 (EMA net). "
        f"Measured {results['date']}, commit {results.get('commit', '?')}.",
        "",
    ]
    summary_rows = [
        [
            r["name"],
            r["batch"],
            f"{r['lr']:.2e}",
            r["warmup"],
            r["lr_schedule"],
            r["ema_decay"],
            fmt(r.get("step_ms"), ".1f"),
            fmt(r.get("samples_per_s"), ".0f"),
            r["steps"],
            fmt(r.get("warmup_s"), ".0f"),
            fmt((r.get("best") or {}).get("1-nna"), ".3f"),
            fmt((r.get("best") or {}).get("mmd"), ".4f"),
            fmt(r.get("seconds_to_best"), ".0f"),
        ]
        for r in results["plans"]
    ]
    header = ["schedule", "batch", "lr", "warmup", "decay", "EMA", "ms/step", "samples/s", "steps", "setup s"]
    lines.append(table([*header, "best 1-NNA", "its MMD", "s to within 0.02 of it"], summary_rows))
    lines += [
        "",
        f"Winner (lowest val 1-NNA, ties MMD): **{results['summary']['winner']}**.",
        "",
        "Curves:",
        "",
    ]
    curve_rows = [
        [
            r["name"],
            f"{p['train_s']:.1f}",
            p["step"],
            f"{p['lr']:.2e}",
            f"{p['loss']:.4f}",
            fmt(p.get("mmd"), ".4f"),
            fmt(p.get("cov"), ".3f"),
            fmt(p.get("1-nna"), ".3f"),
        ]
        for r in results["plans"]
        for p in r["curve"]
    ]
    lines.append(table(["schedule", "train s", "step", "lr", "loss", "MMD", "COV", "1-NNA"], curve_rows))
    lines += ["", f"![quality vs training time]({png})"]
    if results.get("note"):
        lines += ["", results["note"]]
    return "\n".join(lines)


def _commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    cfg = diffusion_config(args.params, args.net)
    weights = WeightSet.open(args.weights)
    if len(categories_of(weights)) > 1:
        raise SystemExit("bench_schedule: one category per weight set (an unconditional denoiser)")
    train, val = load_split(weights, "train"), load_split(weights, "val")
    if not len(train) or not len(val):
        raise SystemExit(f"{args.weights}: needs good fits in both the train and the val split")
    gen = torch.Generator().manual_seed(args.seed)
    pick = torch.randperm(len(val), generator=gen)[: args.val_samples].sort().values
    ids = [val.ids[i] for i in pick.tolist()]
    reference = reference_clouds(
        ids, val.flat[pick], weights.layout, weights.field, args.resolution, args.samples, device
    )
    tokens = TokenLayout(weights.layout)
    normalizer = Normalizer.fit(train.flat, weights.layout, cfg.train.normalization, cfg.train.norm_floor)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = device.type
    results: dict[str, Any] = {
        "benchmark": f"schedule_{kind}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "commit": args.commit or _commit(),
        "setup": {
            "weights": str(args.weights),
            "n_train": len(train),
            "n_val_references": len(ids),
            "reference_source": "val surface clouds" if args.samples else "val fits meshed",
            "net": asdict(cfg.net),
            "normalization": cfg.train.normalization,
            "budget_s": args.budget_s,
            "eval_every": args.eval_every,
            "val_samples": args.val_samples,
            "val_steps": args.val_steps,
            "resolution": args.resolution,
            "mode": args.mode if kind == "cuda" else "eager",
        },
        "plans": [],
    }
    path = out / f"schedule_{kind}.json"
    for plan in load_plans(args.plans):
        try:
            row = run_plan(plan, cfg, tokens, normalizer, train.flat, weights.field, reference, args, device)
        except torch.OutOfMemoryError as exc:
            row = {**asdict(plan), "error": str(exc)[:200], "curve": [], "steps": 0}
        results["plans"].append(row)
        results["summary"] = summarize(results["plans"])
        path.write_text(json.dumps(results, indent=2) + "\n")  # as it goes: a cut-off run keeps its plans
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", help="weight set folder (data/weights of a profile's run)")
    parser.add_argument(
        "--samples", help="its sample set (val surface clouds as references); default: meshed val fits"
    )
    parser.add_argument("--params", default=str(ROOT / "params-profiles" / "shapenet-gpu.yaml"))
    parser.add_argument("--net", help="a net preset instead of the params file's (tiny: the CPU test)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mode", choices=MODES, default="graph", help="CUDA step: graph | compile | eager")
    parser.add_argument(
        "--plans", help="JSON list of schedules (default: the reference + four large-batch ones)"
    )
    parser.add_argument("--budget-s", type=float, default=45.0, help="training seconds per schedule")
    parser.add_argument("--eval-every", type=float, default=9.0, help="training seconds between scores")
    parser.add_argument(
        "--max-steps", type=int, default=0, help="cap on steps per schedule (0: the budget decides)"
    )
    parser.add_argument("--calibration-steps", type=int, default=10)
    parser.add_argument("--val-samples", type=int, default=64)
    parser.add_argument("--val-steps", type=int, default=50)
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commit", help="the commit being measured (the GPU machine's copy has no .git)")
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--from-json", help="rewrite the BENCHMARKS.md section and plot from a results file")
    parser.add_argument("--note", help="a note shown under the section (with --from-json)")
    args = parser.parse_args()
    if args.from_json:
        results = adopt_results(args.from_json)
        if args.note:
            results["note"] = args.note
            (RESULTS / f"{results['benchmark']}.json").write_text(json.dumps(results, indent=2) + "\n")
        name = results["benchmark"]
        png = plot(results, RESULTS / f"{name}.png")
        write_section(name, section(results, str(png.relative_to(ROOT))))
        return
    if not args.weights:
        parser.error("--weights is required (or --from-json)")
    results = run(args)
    plot(results, Path(args.out_dir) / f"{results['benchmark']}.png")
    print(json.dumps({"winner": results["summary"]["winner"]}))


if __name__ == "__main__":
    main()
