"""Shared plumbing for the thin stage entries in `pipelines/`: error handling and progress bars."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shd.errors import InputError

console = Console(stderr=True)

for _var, _value in (
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ("GX_ANALYTICS_ENABLED", "false"),
    ("DVC_NO_ANALYTICS", "1"),
):
    os.environ.setdefault(_var, _value)


def main(stage: Callable[[], None]) -> None:
    """Run a stage; bad input ends in one clear line and exit code 2, not a traceback."""
    try:
        stage()
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar; yields `advance(n)`."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
