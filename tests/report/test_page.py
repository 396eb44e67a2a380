"""The report's HTML pieces without a browser: what the metrics table shows for each row."""

from __future__ import annotations

import re

from shd.report.page import metrics_table

METRICS = {
    "generator": "diffusion",
    "mmd": 0.0123,
    "cov": 0.5,
    "nna": 0.61,
    "nna_ci95": [0.5812, 0.6455],
    "n_evaluated": 10,
    "n_generated": 11,
    "n_empty": 1,
    "yardsticks": {"train_as_generator": {"mmd": 0.01, "nna": 0.52, "nna_ci95": None}},
}


def _tagged(text: str) -> dict[str, str]:
    return dict(re.findall(r'data-key="([^"]+)">([^<]*)<', text))


def test_the_1nna_interval_is_shown_beside_1nna_for_every_row():
    cells = _tagged(metrics_table(METRICS))
    assert cells["nna"] == "0.61" and cells["nna_ci95.0"] == "0.5812" and cells["nna_ci95.1"] == "0.6455"
    assert cells["yardsticks.train_as_generator.nna_ci95"] == "n/a"  # not computed: said so
    assert "1-NNA 95% CI" in metrics_table(METRICS)
