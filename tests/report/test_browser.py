"""The evaluate stage's report opened in headless Chromium with no network (as CI can: `make browser`).

Checks what a person would: no console errors, every viewer drew a shape (read back from a screenshot
of its box, not from the page's own claim), and the metrics table shows reports/eval.json. Two pages:
the one the tiny pipeline's evaluate stage wrote (end to end; its 40-step fits mesh to nothing) and one
of a real evaluation of box fields (tests/eval/evaluate_data.py), whose shapes do mesh. One full-page
screenshot is kept as report.png in the session's pytest temp folder (tests write nothing into the
checkout), or in $SHD_TEST_ARTIFACTS when set (a CI job that uploads it).
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shd.report import ReportConfig
from shd.report.browser import Browser, find_chromium

from .boxes import APP_MESHES, build_box_report

NO_CHROMIUM = (
    "Chromium not found (looked for /usr/bin/chromium and `chromium` on PATH): install it with "
    "`sudo apt-get install chromium` (Debian/Ubuntu) or `make browser`; CI (CI=true) installs it"
)


@pytest.fixture(autouse=True, scope="module")
def _chromium():
    """Browser tests need Chromium: skipped with how to get it, except under CI, where they fail."""
    if find_chromium() is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(NO_CHROMIUM)


VIEWERS = "document.querySelectorAll('.viewer[data-mesh]')"


def _expected_viewers(project: Path, max_shapes: int, worst: int) -> int:
    """Viewers the page should hold: each shown meshed sample and its nearest training shape, plus the
    worst-covered references."""
    kept = json.loads((project / "data/eval/samples.json").read_text())
    shown = [r for r in kept["generated"][:max_shapes] if r["mesh_status"] == "ok"]
    pairs = len(shown) + sum(r["nearest_train"] is not None for r in shown)
    return pairs + min(worst, len(kept["references"]))


def _dig(data, dotted: str):
    """The value at a dotted path of eval.json; None where a level is missing (shown as n/a)."""
    for key in dotted.split("."):
        if isinstance(data, list):  # an interval: .0 low, .1 high
            data = data[int(key)]
        else:
            data = None if data is None else data.get(key)
    return data


def _drawn(png: bytes) -> tuple[float, int]:
    """(fraction of pixels that are not the white background, number of distinct colours)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return float((pixels.min(axis=1) < 235).mean()), len(np.unique(pixels // 16, axis=0))


def visit(page: Path, shot: Path | None = None) -> dict:
    """Open the page, scroll every viewer into view (they start lazily, as a reader scrolls) and read
    back its pixels, the shown table values, the console and the requests."""
    with Browser(width=1280, height=900, timeout=120) as browser:
        browser.open(page)
        boxes = []
        n = browser.evaluate(f"{VIEWERS}.length")
        for i in range(n):
            browser.evaluate(f"{VIEWERS}[{i}].scrollIntoView()")
            browser.wait_for(f"['drawn', 'error'].includes({VIEWERS}[{i}].dataset.state)", 60)
            box = browser.evaluate(
                f"(() => {{ const r = {VIEWERS}[{i}].getBoundingClientRect(); "
                "return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, "
                "height: r.height}; })()"
            )
            boxes.append(browser.screenshot(box))
        cells = browser.evaluate(
            "[...document.querySelectorAll('[data-key]')].map(e => [e.dataset.key, e.textContent])"
        )
        turned = drag_first_viewer(browser) if n else None
        if shot:
            browser.evaluate("window.scrollTo(0, 0)")
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.write_bytes(browser.screenshot())
        state = browser.evaluate("window.shdReport")
        return {"log": browser.log, "boxes": boxes, "cells": cells, "state": state, "turned": turned}


def drag_first_viewer(browser: Browser) -> tuple[bytes, bytes]:
    """The first viewer's pixels before and after a mouse drag across it (the Trackball rotation)."""
    browser.evaluate(f"{VIEWERS}[0].scrollIntoView()")
    rect = browser.evaluate(
        f"(() => {{ const r = {VIEWERS}[0].getBoundingClientRect(); "
        "return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
    )
    scroll = browser.evaluate("[scrollX, scrollY]")
    page_box = {**rect, "x": rect["x"] + scroll[0], "y": rect["y"] + scroll[1]}
    before = browser.screenshot(page_box)
    x, y = rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2
    mouse = {"button": "left", "clickCount": 1}
    browser.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x, "y": y, **mouse})
    for step in range(1, 9):
        browser.send(
            "Input.dispatchMouseEvent",
            {"type": "mouseMoved", "x": x + 8 * step, "y": y + 3 * step, "button": "left", "buttons": 1},
        )
        time.sleep(0.05)
    browser.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x + 64, "y": y + 24, **mouse})
    time.sleep(0.2)
    return before, browser.screenshot(page_box)


@pytest.fixture(scope="module")
def boxes_page(tmp_path_factory) -> tuple[Path, dict]:
    """The report of a real evaluation of box-field shapes (shapes that mesh at any resolution), with
    the single-MLP baseline and one application panel."""
    root = build_box_report(tmp_path_factory.mktemp("boxes"))
    kept = os.environ.get("SHD_TEST_ARTIFACTS")
    shots = Path(kept) if kept else tmp_path_factory.mktemp("artifacts")
    return root, visit(root / "reports/eval_report.html", shot=shots / "report.png")


@pytest.fixture(scope="module")
def stage_page(tiny_project) -> tuple[Path, dict]:
    """The report the evaluate stage of the tiny pipeline wrote (its shapes are mostly empty)."""
    return tiny_project, visit(tiny_project / "reports/eval_report.html")


def check_offline_and_quiet(opened: dict) -> None:
    assert opened["log"].errors == []
    assert opened["log"].requests and all(u.startswith(("file:", "data:")) for u in opened["log"].requests)


def check_metrics_table(project: Path, opened: dict) -> None:
    """Every value the page shows under a metrics key equals reports/eval.json at 4 significant digits."""
    metrics = json.loads((project / "reports/eval.json").read_text())
    assert {"mmd", "yardsticks.train_as_generator.mmd"} <= {k for k, _ in opened["cells"]}
    for key, text in opened["cells"]:
        value = _dig(metrics, key)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            assert text == "n/a", (key, text)
        else:
            assert float(text) == pytest.approx(value, rel=5e-4, abs=1e-12), (key, text, value)


def test_report_opens_offline_without_console_errors(boxes_page, stage_page):
    check_offline_and_quiet(boxes_page[1])
    check_offline_and_quiet(stage_page[1])


def test_every_viewer_draws_a_part_coloured_shape(boxes_page):
    root, opened = boxes_page
    expected = _expected_viewers(root, ReportConfig().max_shapes, ReportConfig().worst_covered) + APP_MESHES
    assert expected > APP_MESHES and len(opened["boxes"]) == expected
    assert opened["state"]["drawn"] == expected and opened["state"]["failed"] == 0
    for png in opened["boxes"]:
        covered, colours = _drawn(png)
        assert covered > 0.002 and colours >= 3, (covered, colours)  # a shaded shape, not a blank canvas


def test_dragging_a_viewer_turns_the_shape(boxes_page):
    before, after = boxes_page[1]["turned"]
    a, b = (np.asarray(Image.open(io.BytesIO(p)).convert("L"), dtype=np.int16) for p in (before, after))
    assert _drawn(after)[0] > 0.002 and np.abs(a - b).mean() > 1.0  # still a shape, seen from elsewhere


def test_metrics_table_shows_eval_json(boxes_page, stage_page):
    root, opened = boxes_page
    keys = {k for k, _ in opened["cells"]}
    for row in ("", "yardsticks.train_as_generator.", "yardsticks.single_baseline."):
        assert {f"{row}mmd", f"{row}cov", f"{row}nna", f"{row}nna_ci95.0", f"{row}nna_ci95.1"} <= keys
    check_metrics_table(root, opened)
    check_metrics_table(*stage_page)
