"""Live progress of long loops (shapes prepared, fit steps, training steps, meshes) and the one place that
silences the libraries' known noise.

Library loops open a `task`; it shows only after a stage entry or the CLI called `enable()`, so library
calls from tests, sweeps and notebooks stay silent. On a terminal a task is a rich bar with an ETA; in a
log (DVC's output, CI) it prints a plain line at most every `LINE_EVERY_S` seconds or 10% of the work,
with the ETA, and every task ends with one summary line.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

LINE_EVERY_S = 30.0
_state: dict = {"console": None, "open": 0}  # the console shown on; tasks open now

# Known noise, matched by its text (never a blanket ignore of a category).
_WARNINGS = (
    # torch 2.13 deprecates LeafSpec; Lightning's pytree helper still builds one on every fit
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
)
_LOG_PREFIXES = ("💡 Tip:",)  # Lightning's advertisements for its cloud products (litlogger, litmodels)
_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_LOG_PREFIXES)


_DROP_TIPS = _DropTips()


def quiet_known_noise() -> None:
    """Silence Lightning's tips and the known deprecation warnings of our pinned stack (idempotent)."""
    for category, message in _WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _DROP_TIPS not in logger.filters:
            logger.addFilter(_DROP_TIPS)


def enable(console: Console) -> None:
    """Show tasks on `console` from now on (stage entries and the CLI call this once)."""
    _state["console"] = console


@contextmanager
def shown_on(console: Console) -> Iterator[None]:
    """Show tasks on `console` within the block only (a CLI command's own progress)."""
    before, _state["console"] = _state["console"], console
    try:
        yield
    finally:
        _state["console"] = before


def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Task:
    """One unit of long work: `advance(n)` as it goes, `close()` at the end (prints the summary line).

    Only the outermost open task shows: the meshes of training's generation check stay quiet inside
    the training task."""

    def __init__(self, description: str, total: int | None, unit: str = "") -> None:
        self.description, self.total, self.unit = description, total, unit
        self.done = 0
        self.t0 = self._last_line = time.perf_counter()
        self._next_fraction = 0.1
        self._console = _state["console"] if not _state["open"] else None
        _state["open"] += 1
        self._bar: Progress | None = None
        if self._console is not None and self._console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(unit),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
                transient=True,
            )
            self._bar.start()
            self._id = self._bar.add_task(description, total=total)

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None without a total or before any progress."""
        if not self.total or not self.done:
            return None
        return (time.perf_counter() - self.t0) / self.done * max(self.total - self.done, 0)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._id, n)
        elif self._console is not None:
            now = time.perf_counter()
            fraction = self.done / self.total if self.total else 0.0
            if now - self._last_line >= LINE_EVERY_S or (self.total and fraction >= self._next_fraction):
                self._last_line = now
                self._next_fraction = (int(fraction * 10) + 1) / 10
                self._console.print(self.line(), highlight=False, soft_wrap=True)

    def line(self) -> str:
        """`overfit: 120/400 shape-steps (30%), 0:00:12 elapsed, ETA 0:00:28`."""
        elapsed = _fmt_s(time.perf_counter() - self.t0)
        unit = f" {self.unit}" if self.unit else ""
        if not self.total:
            return f"{self.description}: {self.done}{unit}, {elapsed} elapsed"
        eta = self.eta_s()
        return (
            f"{self.description}: {self.done}/{self.total}{unit} ({self.done / self.total:.0%}), "
            f"{elapsed} elapsed, ETA {'?' if eta is None else _fmt_s(eta)}"
        )

    def close(self) -> None:
        _state["open"] -= 1
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._console is not None:
            unit = f" {self.unit}" if self.unit else ""
            elapsed = _fmt_s(time.perf_counter() - self.t0)
            self._console.print(
                f"{self.description}: {self.done}{unit} in {elapsed}", highlight=False, soft_wrap=True
            )
            self._console = None


@contextmanager
def task(description: str, total: int | None, unit: str = "") -> Iterator[Callable[[int], None]]:
    """A `Task` for the block; yields its `advance(n=1)`."""
    work = Task(description, total, unit)
    try:
        yield work.advance
    finally:
        work.close()
