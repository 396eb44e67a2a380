"""The quality table's panel: rows as in the file, one scatter colour per row, points where they belong."""

from __future__ import annotations

import json
import re

import pytest

from shd.errors import InputError
from shd.eval.quality_table import ROW_NAMES, table_document
from shd.report.quality import ROW_COLOURS, load_table, quality_section, scatter_svg
from tests.eval.test_quality_table import CFG, _row


def _table():
    from shd.eval.quality_table import protocol

    rows = [
        _row(name, 0.001 * (i + 1), 0.01 * (i + 1), nna=0.5 + 0.05 * i) for i, name in enumerate(ROW_NAMES)
    ]
    rows[4] = _row("train_as_generator", 0.0, 0.02)
    rows[0]["points"] = {"nearest_train_cd": [0.001, 0.1, None], "nearest_test_cd": [0.01, 0.5, 0.2]}
    return table_document(rows, protocol(CFG, 606, 3237))


def _circles(svg: str, row: str) -> list[tuple[float, float]]:
    group = re.search(rf'<g data-row="{row}"[^>]*>(.*?)</g>', svg).group(1)
    return [(float(x), float(y)) for x, y in re.findall(r'cx="([\d.]+)" cy="([\d.]+)"', group)]


def test_scatter_has_one_colour_per_row_and_places_points_log_log():
    table = _table()
    svg = scatter_svg(table["rows"])
    assert len(set(ROW_COLOURS.values())) == len(ROW_NAMES)
    for name in ROW_NAMES:
        assert f'<g data-row="{name}" fill="{ROW_COLOURS[name]}"' in svg
    (ax, ay), (bx, by) = _circles(svg, "moe_ddpm500")  # the point without a novelty value is left out
    assert bx > ax and by < ay  # farther from train: right; farther from test: up (smaller y)
    # x from 1e-3 to 1e-1: two decades over the plot width; 0.001 -> left edge, 0.1 -> right edge
    assert ax == pytest.approx(56) and bx == pytest.approx(640 - 56)
    (tx, _), *_ = _circles(svg, "train_as_generator")
    assert tx == pytest.approx(56)  # a training shape itself (CD 0) at the left edge


def test_panel_shows_the_file_values_and_the_verdict(tmp_path):
    table = _table()
    path = tmp_path / "quality_table.json"
    path.write_text(json.dumps(table))
    html = quality_section(load_table(path))
    cells = dict(re.findall(r'data-key="([^"]+)">([^<]*)<', html))
    assert cells["rows.moe_ddim50.nna"] == "0.55" and cells["rows.moe_ddim50.nna_ci95.1"] == "0.6"
    assert cells["rows.single.n_empty"] == "1"
    assert "Against the memorizers" in html and 'id="novelty-scatter"' in html
    assert load_table(tmp_path / "none.json") is None
    path.write_text(json.dumps({"rows": []}))
    with pytest.raises(InputError, match="quality table"):
        load_table(path)
