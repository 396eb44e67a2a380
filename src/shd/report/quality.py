"""The quality table's panel: every row's metrics and the novelty-vs-quality scatter (issue 20).

Each generated shape of each row is one point: its CD to the nearest training shape (novelty, x)
against its CD to the nearest test shape (quality, y), log-log, one colour per row (after Zeng et al.
2025). Memorizers sit on the left (the training set itself at x = 0, drawn at the left edge); a model
that generalizes sits lower than the noise baselines at the same x. Inline SVG: nothing is fetched.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shd.errors import InputError
from shd.eval.quality_table import TABLE_FORMAT, noise_verdict
from shd.report.page import fmt, section

# one colour per row (Okabe-Ito, colour-blind safe), in ROW_NAMES order
ROW_COLOURS = {
    "moe_ddpm500": "#0072b2",
    "moe_ddim50": "#56b4e9",
    "moe_ddim10": "#009e73",
    "single": "#d55e00",
    "train_as_generator": "#000000",
    "noise_low": "#e69f00",
    "noise_high": "#cc79a7",
}
COLUMNS = (
    ("mmd", "MMD ↓"),
    ("cov", "COV ↑"),
    ("nna", "1-NNA →0.5"),
    ("nna_ci95", "1-NNA 95% CI"),
    ("n_generated", "generated"),
    ("n_empty", "empty"),
    ("novelty_median_cd", "novelty: median CD to train"),
    ("median_nearest_test_cd", "median CD to test"),
)
WIDTH, HEIGHT, MARGIN = 640, 440, 56


def load_table(path: str | Path) -> dict[str, Any] | None:
    """The table file, or None when there is none (the panel is left out)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        table = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"is not valid JSON ({exc})") from None
    if not isinstance(table, dict) or table.get("format") != TABLE_FORMAT:
        raise InputError(path, f"expected a quality table (format {TABLE_FORMAT})")
    return table


def _cell(name: str, key: str, value: Any) -> str:
    if isinstance(value, list) and len(value) == 2:
        low, high = (f'<span data-key="rows.{name}.{key}.{i}">{fmt(v)}</span>' for i, v in enumerate(value))
        return f"<td>{low}–{high}</td>"
    return f'<td data-key="rows.{name}.{key}">{fmt(value)}</td>'


def rows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t in COLUMNS)
    body = []
    for r in rows:
        name = html.escape(str(r["name"]))
        chip = f'<i style="background: {ROW_COLOURS.get(r["name"], "#777")}"></i>'
        cells = "".join(_cell(name, key, r.get(key)) for key, _ in COLUMNS)
        body.append(f'<tr><td class="legend">{chip}{name}</td>{cells}</tr>')
    return f'<table id="quality"><tr><th>row</th>{head}</tr>{"".join(body)}</table>'


def _finite_positive(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v) and v > 0]


def _axis(values: list[float]) -> tuple[float, float]:
    """log10 range covering the values, whole decades (one decade when there is nothing to show)."""
    if not values:
        return -3.0, -2.0
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    return float(lo), float(max(hi, lo + 1))


def scatter_svg(rows: Sequence[Mapping[str, Any]]) -> str:
    """Every row's points, log-log; x <= 0 (a training shape itself) is drawn at the left edge."""
    xs = [(r.get("points") or {}).get("nearest_train_cd") or [] for r in rows]
    ys = [(r.get("points") or {}).get("nearest_test_cd") or [] for r in rows]
    x0, x1 = _axis(_finite_positive([v for x in xs for v in x]))
    y0, y1 = _axis(_finite_positive([v for y in ys for v in y]))
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def px(v: float) -> float:
        t = (math.log10(v) - x0) / (x1 - x0) if v > 0 else 0.0
        return MARGIN + inner_w * min(max(t, 0.0), 1.0)

    def py(v: float) -> float:
        t = (math.log10(v) - y0) / (y1 - y0) if v > 0 else 0.0
        return HEIGHT - MARGIN - inner_h * min(max(t, 0.0), 1.0)

    parts = [
        f'<svg id="novelty-scatter" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-size="11" font-family="system-ui, sans-serif">',
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#999"/>',
    ]
    for d in range(int(x0), int(x1) + 1):
        x = px(10.0**d)
        parts.append(f'<line x1="{x:.1f}" y1="{HEIGHT - MARGIN}" x2="{x:.1f}" y2="{MARGIN}" stroke="#eee"/>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - MARGIN + 14}" text-anchor="middle">1e{d}</text>')
    for d in range(int(y0), int(y1) + 1):
        y = py(10.0**d)
        parts.append(f'<line x1="{MARGIN}" y1="{y:.1f}" x2="{WIDTH - MARGIN}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{MARGIN - 4}" y="{y + 4:.1f}" text-anchor="end">1e{d}</text>')
    parts.append(
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">CD to the nearest training shape '
        "(novelty) →</text>"
    )
    parts.append(
        f'<text x="14" y="{HEIGHT / 2}" text-anchor="middle" transform="rotate(-90 14 {HEIGHT / 2})">'
        "CD to the nearest test shape (lower: closer) →</text>"
    )
    for r, x, y in zip(rows, xs, ys, strict=True):
        colour = ROW_COLOURS.get(r["name"], "#777")
        dots = "".join(
            f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2.2"/>'
            for a, b in zip(x, y, strict=True)
            if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and b > 0
        )
        parts.append(
            f'<g data-row="{html.escape(str(r["name"]))}" fill="{colour}" fill-opacity="0.55">{dots}</g>'
        )
    legend_y = MARGIN + 4
    for i, r in enumerate(rows):
        colour = ROW_COLOURS.get(r["name"], "#777")
        y = legend_y + 14 * i
        parts.append(f'<circle cx="{WIDTH - MARGIN - 118}" cy="{y}" r="4" fill="{colour}"/>')
        parts.append(f'<text x="{WIDTH - MARGIN - 110}" y="{y + 4}">{html.escape(str(r["name"]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def quality_section(table: Mapping[str, Any]) -> str:
    """The panel: intro (protocol), the rows, the scatter and where the model sits against the noise."""
    p = table.get("protocol") or {}
    verdict = "".join(f"<li>{html.escape(v)}</li>" for v in noise_verdict(table))
    missing = table.get("missing_rows") or []
    intro = (
        f"Every row scored on the same {fmt(table.get('n_references'))} test references "
        f"({html.escape(str(table.get('normalization')))} normalization, meshes at "
        f"{fmt(p.get('resolution'))}<sup>3</sup>): the diffusion model under three samplers, the single-MLP "
        "baseline, the training set as generator and training weights plus Gaussian noise in the model's "
        "normalized space (memorization baselines after Zeng et al. 2025). The scatter places each "
        "generated shape by its CD to the nearest training shape (novelty) and to the nearest test shape; "
        "training shapes themselves (x = 0) are drawn at the left edge."
        + (f" Not scored: {html.escape(', '.join(missing))}." if missing else "")
    )
    body = rows_table(table["rows"]) + scatter_svg(table["rows"])
    if verdict:
        body += f"<p class='sub'>Against the memorizers:</p><ul class='sub'>{verdict}</ul>"
    return section("Quality table: novelty against quality", intro, body, "quality")
