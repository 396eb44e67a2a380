"""Fit quality on held-out points: whole-shape and per-part IoU, bad-fit judgement, aggregates."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from shd.fields.config import FieldConfig, OverfitConfig
from shd.fields.layout import Layout, unflatten
from shd.fields.moe import combine, expert_logits


def _iou(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """IoU along the point axis (dim 1); NaN where both are empty (undefined, left out of means)."""
    inter = (pred & truth).sum(1).float()
    union = (pred | truth).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.nan)


@torch.no_grad()
def heldout_iou(
    flat: torch.Tensor,
    layout: Layout,
    field: FieldConfig,
    points: torch.Tensor,
    occupancy: torch.Tensor,
    labels: torch.Tensor,
    chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU (B,) of the shape logit > 0 vs occupancy, and per-part IoU (B, E) of expert e's logit > 0 vs
    label == e (semantic fields; an empty (B, 0) otherwise), on held-out points (B, Q, 3)."""
    ious, parts = [], []
    for s in range(0, flat.shape[0], chunk):
        logits = expert_logits(unflatten(flat[s : s + chunk], layout), points[s : s + chunk], field)
        ious.append(_iou(combine(logits, field) > 0, occupancy[s : s + chunk].bool()))
        if field.semantic:
            e = torch.arange(field.n_experts, device=labels.device)
            truth = labels[s : s + chunk].unsqueeze(-1) == e
            parts.append(_iou(logits > 0, truth))
        else:
            parts.append(logits.new_zeros(logits.shape[0], 0))
    return torch.cat(ious), torch.cat(parts)


def judge(iou: float | None, part_iou: list[float | None], cfg: OverfitConfig) -> tuple[str, str]:
    """('ok' | 'bad', reason) for a finished fit by the held-out thresholds of the config."""
    if iou is None or not math.isfinite(iou):
        return "bad", "no held-out IoU (empty shape and prediction)"
    if iou < cfg.min_iou:
        return "bad", f"held-out IoU {iou:.3f} < min_iou {cfg.min_iou}"
    low = [(e, p) for e, p in enumerate(part_iou) if p is not None and p < cfg.min_part_iou]
    if low:
        e, p = min(low, key=lambda t: t[1])
        return "bad", f"part {e} held-out IoU {p:.3f} < min_part_iou {cfg.min_part_iou}"
    return "ok", ""


def part_mean(part_iou: Iterable[float | None]) -> float | None:
    vals = [p for p in part_iou if p is not None]
    return sum(vals) / len(vals) if vals else None


def aggregate(records: list[dict]) -> dict:
    """Summary over shape records (`iou`, `part_iou`, `status`): means over every shape with a
    held-out IoU (bad fits included, failed ones have none), counts of excluded shapes."""
    ious = [r["iou"] for r in records if r.get("iou") is not None]
    parts = [m for r in records if (m := part_mean(r.get("part_iou") or [])) is not None]
    return {
        "iou_mean": sum(ious) / len(ious) if ious else None,
        "iou_part_mean": sum(parts) / len(parts) if parts else None,
        "n_shapes": len(records),
        "n_bad": sum(r["status"] != "ok" for r in records),
        "n_failed": sum(r["status"] == "failed" for r in records),
    }
