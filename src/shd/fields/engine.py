"""Batched fitting engine: B shapes trained as one computation, each with its own Adam, schedule and stop.

Parameters of all active shapes are one (B, D) tensor (the flat layout), so the optimizer is a handful
of elementwise ops whose rows never interact: per-shape Adam by construction. Shapes stream through a
fixed number of slots: finished shapes leave (the batch is compacted, not masked) and queued shapes
take their place, each starting at its own step 0. Training points are drawn by a counter-based hash
of (shape seed, step), so a shape's fit does not depend on which other shapes share its batch.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from shd.fields.config import FieldConfig, OverfitConfig
from shd.fields.layout import Layout, flatten, make_layout, unflatten
from shd.fields.moe import combine, expert_logits, shape_losses
from shd.fields.schedule import plateau_update, scheduled_lr

TRAIN_KEYS = ("points", "occupancy", "labels")
BETAS, EPS = (0.9, 0.999), 1e-8
_MASK32 = 0xFFFFFFFF


@dataclass
class ShapeResult:
    shape_id: str
    params: torch.Tensor  # (D,) float32 on CPU
    loss: float | None  # mean training loss of the last interval
    train_iou: float | None  # whole-shape IoU on the training batches of the last interval
    steps: int
    status: str  # "ok" | "failed"
    reason: str  # why it stopped ("plateau", "max_steps") or failed


@dataclass
class Active:
    """The shapes currently in the batch; every tensor field has the batch as first axis."""

    ids: list[str]
    flat: torch.Tensor
    m: torch.Tensor
    v: torch.Tensor
    step: torch.Tensor
    seed: torch.Tensor
    lr: torch.Tensor
    best: torch.Tensor
    bad: torch.Tensor
    flat_count: torch.Tensor
    acc_loss: torch.Tensor
    acc_inter: torch.Tensor
    acc_union: torch.Tensor
    points: torch.Tensor
    occupancy: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.flat.shape[0]

    def rows(self, index: torch.Tensor) -> Active:
        """The shapes at `index` (compaction: finished shapes stop costing compute)."""
        out = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "ids"}
        return Active(ids=[self.ids[i] for i in index.tolist()], **out)

    def cat(self, other: Active) -> Active:
        out = {
            f.name: torch.cat([getattr(self, f.name), getattr(other, f.name)])
            for f in fields(self)
            if f.name != "ids"
        }
        return Active(ids=self.ids + other.ids, **out)


def shape_seed(shape_id: str, seed: int) -> int:
    """Per-shape sampling seed from the shape id: independent of batch composition and order."""
    return zlib.crc32(f"{seed}:{shape_id}".encode())


def new_active(
    ids: list[str],
    data: dict[str, torch.Tensor],
    init: torch.Tensor,
    cfg: OverfitConfig,
    device: torch.device,
) -> Active:
    """Fresh slots for shapes: shared initial weights, zero Adam state, step 0."""
    b = len(ids)
    flat = init.to(device=device, dtype=torch.float32).reshape(1, -1).repeat(b, 1)
    zeros = lambda dtype: torch.zeros(b, device=device, dtype=dtype)  # noqa: E731
    return Active(
        ids=list(ids),
        flat=flat,
        m=torch.zeros_like(flat),
        v=torch.zeros_like(flat),
        step=zeros(torch.int64),
        lr=torch.full((b,), cfg.lr, device=device),
        seed=torch.tensor([shape_seed(s, cfg.seed) for s in ids], device=device, dtype=torch.int64),
        best=torch.full((b,), float("inf"), device=device),
        bad=zeros(torch.int64),
        flat_count=zeros(torch.int64),
        acc_loss=zeros(torch.float32),
        acc_inter=zeros(torch.float32),
        acc_union=zeros(torch.float32),
        **{k: torch.as_tensor(data[k]).to(device) for k in TRAIN_KEYS},
    )


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """Integer mixing on int64 holding 32-bit values (multipliers small enough not to overflow)."""
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    return (x >> 16) ^ x


def batch_indices(seed: torch.Tensor, step: torch.Tensor, count: int, n_points: int) -> torch.Tensor:
    """Indices (B, count) of the training points of each shape at its step (with replacement)."""
    j = torch.arange(count, device=seed.device, dtype=torch.int64)
    counter = (step.unsqueeze(1) * count + j) & _MASK32
    return _hash32(_hash32(counter ^ (seed.unsqueeze(1) & _MASK32)) + seed.unsqueeze(1)) % n_points


def draw_batch(active: Active, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    idx = batch_indices(active.seed, active.step, count, active.points.shape[1])
    x = active.points.gather(1, idx.unsqueeze(-1).expand(-1, -1, 3))
    return x, active.occupancy.gather(1, idx), active.labels.gather(1, idx)


@contextlib.contextmanager
def precision(mode: str, device: torch.device) -> Iterator[None]:
    """fp32; tf32 matmuls (CUDA); or bf16 autocast for the forward pass."""
    if mode == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
        return
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def adam_update(
    flat: torch.Tensor,
    grad: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    step: torch.Tensor,
    lr: torch.Tensor,
) -> None:
    """torch.optim.Adam's update, with a step count and learning rate per row (shape)."""
    b1, b2 = BETAS
    with torch.no_grad():
        m.mul_(b1).add_(grad, alpha=1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        t = step.to(torch.float32).unsqueeze(1)
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        denom = (v.sqrt() / bc2.sqrt()).add_(EPS)
        flat.addcdiv_(m, denom * (bc1 / lr.unsqueeze(1)), value=-1.0)


def train_step(
    active: Active, x: torch.Tensor, occ: torch.Tensor, lab: torch.Tensor, layout: Layout, cfg: OverfitConfig
) -> torch.Tensor:
    """One Adam step of every active shape on its batch; returns the per-shape losses (B,)."""
    fcfg = cfg.field
    # leaves sharing the flat storage: gradients come per tensor, with no slice-backward scatter
    params = {k: t.detach().requires_grad_(True) for k, t in unflatten(active.flat, layout).items()}
    with precision(cfg.precision, x.device):
        logits = expert_logits(params, x, fcfg)
    losses = shape_losses(logits.float(), occ, lab, fcfg)
    grads = torch.autograd.grad(losses.sum(), list(params.values()))
    grad = flatten(dict(zip(params, grads, strict=True)))
    lr = scheduled_lr(active.step, active.lr, cfg)
    active.step += 1
    adam_update(active.flat, grad, active.m, active.v, active.step, lr)
    with torch.no_grad():
        pred, truth = combine(logits.float(), fcfg) > 0, occ.bool()
        active.acc_inter += (pred & truth).sum(1)
        active.acc_union += (pred | truth).sum(1)
        active.acc_loss += losses.detach()
    return losses.detach()


def check(active: Active, cfg: OverfitConfig, interval: int) -> tuple[torch.Tensor, list[ShapeResult]]:
    """End of a bookkeeping interval: schedule, early stop; returns (rows to keep, finished results)."""
    loss = active.acc_loss / interval
    iou = active.acc_inter / active.acc_union.clamp(min=1)
    active.best, active.bad, active.flat_count, active.lr = plateau_update(
        loss, active.best, active.bad, active.flat_count, active.lr, cfg, active.step
    )
    failed = ~torch.isfinite(loss)
    stop_plateau = active.flat_count >= cfg.stop_patience
    stop_max = active.step >= cfg.max_steps
    done = failed | stop_plateau | stop_max
    for t in (active.acc_loss, active.acc_inter, active.acc_union):
        t.zero_()
    done_idx = done.nonzero().squeeze(1)
    keep = (~done).nonzero().squeeze(1)
    if len(done_idx) == 0:
        return keep, []
    host = {
        k: t[done_idx].cpu()
        for k, t in (
            ("loss", loss),
            ("iou", iou),
            ("step", active.step),
            ("failed", failed),
            ("plateau", stop_plateau),
        )
    }
    params = active.flat[done_idx].cpu()
    results = []
    for i, row in enumerate(done_idx.tolist()):
        bad = bool(host["failed"][i])
        steps = int(host["step"][i])
        results.append(
            ShapeResult(
                shape_id=active.ids[row],
                params=torch.full_like(params[i], np.nan) if bad else params[i],
                loss=None if bad else float(host["loss"][i]),
                train_iou=None if bad else float(host["iou"][i]),
                steps=steps,
                status="failed" if bad else "ok",
                reason=(
                    f"non-finite training loss within steps {steps - interval}..{steps}"
                    if bad
                    else "plateau"
                    if bool(host["plateau"][i])
                    else "max_steps"
                ),
            )
        )
    return keep, results


def fit_stream(
    ids: Sequence[str],
    load: Callable[[list[str]], dict],
    init: torch.Tensor,
    cfg: OverfitConfig,
    device: str | torch.device,
    capacity: int,
    on_done: Callable[[list[ShapeResult]], None],
    parts: list[str] | None = None,
    on_interval: Callable[[Active], None] | None = None,
) -> None:
    """Fit every shape in `ids` through `capacity` slots; `on_done` gets results as shapes finish.

    `load(ids)` returns the training arrays (`TRAIN_KEYS`) stacked in that order. Finished shapes
    leave the batch at each bookkeeping interval and queued ones fill the free slots. `on_interval`
    sees the batch after every interval (benchmarks track held-out IoU with it).
    """
    device = torch.device(device)
    layout = make_layout(cfg.field, parts)
    queue = list(ids)
    active: Active | None = None
    while queue or (active is not None and len(active)):
        free = capacity - (len(active) if active is not None else 0)
        if queue and free > 0:
            batch, queue = queue[:free], queue[free:]
            fresh = new_active(batch, load(batch), init, cfg, device)
            active = fresh if active is None or not len(active) else active.cat(fresh)
        assert active is not None
        for _ in range(cfg.check_every):
            train_step(active, *draw_batch(active, cfg.points_per_step), layout, cfg)
        if on_interval is not None:
            on_interval(active)
        keep, finished = check(active, cfg, cfg.check_every)
        if finished:
            active = active.rows(keep)
            on_done(finished)


def memory_capacity(
    field: FieldConfig, n_points: int, cfg: OverfitConfig, device: torch.device, fraction: float = 0.8
) -> int:
    """How many shapes fit in memory at once (training data, Adam state and activations)."""
    layout = make_layout(field)
    # saved activations (encoding copy per expert, every hidden layer) + two backward temporaries
    widths = layout.blocks[0].shape[1] + sum(field.hidden) + 2 * max(field.hidden) + 8
    per_shape = n_points * 14 + 16 * layout.dim + cfg.points_per_step * field.n_experts * widths * 4
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return max(1, min(cfg.max_batch, int(free * fraction // per_shape)))
