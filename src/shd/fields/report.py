"""Figures of a fitted weight set (headless matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from shd.atomic import write_with  # noqa: E402
from shd.fields.quality import part_mean  # noqa: E402


def iou_histogram(records: list[dict], path: str | Path) -> None:
    """Histogram of held-out IoU and mean part IoU over the shapes of a weight set."""
    ious = [r["iou"] for r in records if r.get("iou") is not None]
    parts = [m for r in records if (m := part_mean(r.get("part_iou") or [])) is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    bins = [0.5 + 0.01 * i for i in range(51)]
    ax.hist([min(max(x, 0.5), 1.0) for x in ious], bins=bins, alpha=0.7, label=f"shape IoU (n={len(ious)})")
    ax.hist([min(max(x, 0.5), 1.0) for x in parts], bins=bins, alpha=0.7, label="mean part IoU")
    ax.set_xlabel("held-out IoU (values below 0.5 counted at 0.5)")
    ax.set_ylabel("shapes")
    ax.legend()
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
