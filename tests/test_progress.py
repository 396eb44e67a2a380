"""Live progress of long loops (plain lines with an ETA when the output is a log, not a terminal) and the
central silencing of the libraries' known noise."""

from __future__ import annotations

import io
import logging
import warnings

import pytest
from rich.console import Console

from shd import progress


@pytest.fixture
def log_console():
    """A console writing to a log (not a terminal), shown on for the test."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with progress.shown_on(console):
        yield out


def test_a_task_in_a_log_prints_lines_with_an_eta_and_a_summary(log_console):
    with progress.task("overfit", total=50, unit="shape-steps") as advance:
        for _ in range(50):
            advance(1)
    lines = log_console.getvalue().splitlines()
    assert 5 <= len(lines) <= 12  # every ~10%, not every step
    assert all("ETA" in line for line in lines[:-1]) and lines[0].startswith(
        "overfit: 5/50 shape-steps (10%)"
    )
    assert lines[-1] == "overfit: 50 shape-steps in 0:00:00"


def test_only_the_outermost_task_shows(log_console):
    with progress.task("train", total=2, unit="steps") as advance:
        with progress.task("meshing", total=4) as inner:
            inner(4)
        advance(2)
    text = log_console.getvalue()
    assert "meshing" not in text and "train: 2 steps in" in text


def test_library_tasks_are_silent_unless_shown(capsys, monkeypatch):
    monkeypatch.setitem(progress._state, "console", None)  # as in a library user's process (no stage entry)
    with progress.task("meshing", total=3) as advance:
        advance(3)
    assert capsys.readouterr() == ("", "")


def test_known_deprecations_are_silenced_by_their_text_only():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        progress.quiet_known_noise()
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)`",
            FutureWarning,
            stacklevel=1,
        )
        warnings.warn("some other future change", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["some other future change"]


def test_lightning_tips_are_dropped_and_its_other_info_kept(caplog):
    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    progress.quiet_known_noise()
    progress.quiet_known_noise()  # idempotent: one filter
    with caplog.at_level(logging.INFO):
        rank_zero_info("💡 Tip: For seamless cloud logging and experiment tracking, try installing litlogger")
        rank_zero_info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
