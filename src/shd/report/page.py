"""The report's HTML: metrics table with yardsticks, versions, shape grids, application panels.

Plain strings with every value escaped; no template engine and nothing fetched when the page opens.
Table cells carry `data-row`/`data-key` (the path of the value in reports/eval.json), so the browser
test reads back exactly what a person sees and compares it with the file.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shd.eval.palette import part_name, part_rgb
from shd.report.viewer import VIEWER_CSS

# (key in a metrics row, column title, what it means)
COLUMNS = (
    ("mmd", "MMD ↓", "mean over references of the CD to the nearest generated shape"),
    ("cov", "COV ↑", "fraction of references that are some generated shape's nearest"),
    ("nna", "1-NNA →0.5", "leave-one-out 1-NN accuracy, generated vs reference (0.5 is ideal)"),
    ("nna_ci95", "1-NNA 95% CI", "bootstrap percentile interval of 1-NNA (both sets resampled)"),
    ("n_evaluated", "scored", "generated shapes scored (clipped to the references)"),
    ("n_generated", "generated", "weight vectors decoded"),
    ("n_empty", "empty", "shapes with no usable mesh"),
)
# (row key, path of the row in reports/eval.json, label)
ROWS = (
    ("generated", (), "this run"),
    ("train_as_generator", ("yardsticks", "train_as_generator"), "oracle: training set as generator"),
    ("single_baseline", ("yardsticks", "single_baseline"), "single-MLP baseline (reconstructions)"),
)

CSS = """
:root { --vpx: 200px; }
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; }
.sub { color: #666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; font-family: monospace; font-size: 12px; }
.grid { display: flex; flex-wrap: wrap; gap: 14px; }
.pair { display: flex; gap: 4px; padding: 6px; border: 1px solid #eee; border-radius: 6px; }
.pair.copy { border-color: #d55e00; background: #fff4ec; }
figure.shape { margin: 0; width: var(--vpx); }
figcaption { font-size: 11px; color: #444; margin-top: 2px; overflow-wrap: anywhere; }
.legend span { display: inline-block; margin-right: 12px; font-size: 13px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
.panel img { max-width: 100%; border: 1px solid #eee; margin: 4px 0; }
"""


def fmt(value: Any) -> str:
    """How a number is shown: 4 significant digits; missing or non-finite values are 'n/a'."""
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    return html.escape(str(value))


def _dig(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def metrics_rows(metrics: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], str, Mapping[str, Any]]]:
    """(row key, path, label, values) of the generator and each yardstick present in the metrics."""
    rows = []
    for key, path, label in ROWS:
        values = metrics if not path else _dig(metrics, path)
        if isinstance(values, Mapping):
            rows.append((key, path, label, values))
    return rows


def _cell(row: str, path: Sequence[str], value: Any) -> str:
    """A table cell tagged with the value's path; an interval [low, high] shows as two tagged numbers
    (paths ending .0 and .1) so each reads back against the file."""
    dotted = html.escape(".".join(path))
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = (
            f'<span data-row="{row}" data-key="{dotted}.{i}">{fmt(v)}</span>' for i, v in enumerate(value)
        )
        return f"<td>{low}–{high}</td>"
    return f'<td data-row="{row}" data-key="{dotted}">{fmt(value)}</td>'


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """The metrics of record with their yardsticks, one row each, plus per-part MMD / COV."""
    rows = metrics_rows(metrics)
    head = "".join(f'<th title="{html.escape(t)}">{html.escape(c)}</th>' for _, c, t in COLUMNS)
    body = []
    for key, path, label, values in rows:
        cells = "".join(_cell(key, (*path, col), values.get(col)) for col, _, _ in COLUMNS)
        name = f"{html.escape(str(metrics.get('generator')))} ({label})" if key == "generated" else label
        body.append(f"<tr><td>{name}</td>{cells}</tr>")
    out = [f'<table id="metrics"><tr><th>generator</th>{head}</tr>{"".join(body)}</table>']
    parts = [p for _, _, _, v in rows for p in (v.get("parts") or {})]
    names = list(dict.fromkeys(parts))
    if names:
        head = "".join(f"<th>{html.escape(n)} MMD</th><th>{html.escape(n)} COV</th>" for n in names)
        body = []
        for key, path, label, values in rows:
            cells = []
            for n in names:
                part = (values.get("parts") or {}).get(n) or {}
                for col in ("mmd", "cov"):
                    dotted = ".".join((*path, "parts", n, col))
                    cells.append(
                        f'<td data-row="{key}" data-key="{html.escape(dotted)}">{fmt(part.get(col))}</td>'
                    )
            body.append(f"<tr><td>{html.escape(label)}</td>{''.join(cells)}</tr>")
        out.append(f'<table id="parts"><tr><th>per part</th>{head}</tr>{"".join(body)}</table>')
    novelty = metrics.get("novelty")
    if isinstance(novelty, Mapping):
        out.append(
            f'<p class="sub">Novelty: median CD to the nearest training shape '
            f'<b data-key="novelty.median_nearest_train">{fmt(novelty.get("median_nearest_train"))}</b> '
            f"against the training set's own median nearest-neighbour CD "
            f'<b data-key="novelty.train_median_nn">{fmt(novelty.get("train_median_nn"))}</b>; '
            f"fraction closer than that (likely near-copies): "
            f'<b data-key="novelty.fraction_closer_than_train_median">'
            f"{fmt(novelty.get('fraction_closer_than_train_median'))}</b>.</p>"
        )
    return "\n".join(out)


def key_value_table(title: str, values: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><td>{html.escape(str(k))}</td><td class="text">{fmt(v)}</td></tr>' for k, v in values.items()
    )
    return f"<h3>{html.escape(title)}</h3><table>{rows}</table>" if values else ""


def legend(part_names: Sequence[str] | None, n_parts: int) -> str:
    chips = []
    for i in range(n_parts):
        r, g, b = (int(round(255 * c)) for c in part_rgb(i))
        name = html.escape(part_name(i, part_names))
        chips.append(f'<span><i style="background: rgb({r},{g},{b})"></i>{name}</span>')
    return f'<p class="legend">{"".join(chips)}</p>'


def section(title: str, intro: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2><p class="sub">{intro}</p>{body}</section>'


def page(
    title: str, subtitle: str, sections: Iterable[str], meshes: Iterable[str], script: str, viewer_px: int
) -> str:
    """The whole document: stored meshes first (so viewers find them), the viewer script last."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{CSS}{VIEWER_CSS}:root {{ --vpx: {int(viewer_px)}px; }}</style></head><body>",
            f'<h1>{html.escape(title)}</h1><p class="sub">{subtitle}</p>',
            *sections,
            '<div id="meshes" hidden>',
            *meshes,
            "</div>",
            script,
            "</body></html>",
        ]
    )
