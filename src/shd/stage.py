"""Shared plumbing for the thin stage entries in `pipelines/`: error handling, progress bars and the
DVC metrics files."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from rich.console import Console

from shd import progress
from shd.atomic import write_json
from shd.errors import InputError

console = Console(stderr=True, soft_wrap=True)  # a log line stays one line (DVC output, CI)

for _var, _value in (
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ("GX_ANALYTICS_ENABLED", "false"),
    ("DVC_NO_ANALYTICS", "1"),
):
    os.environ.setdefault(_var, _value)


def main(stage: Callable[[], None]) -> None:
    """Run a stage with live progress and without the libraries' known noise; bad input ends in one
    clear line and exit code 2, not a traceback."""
    progress.quiet_known_noise()
    progress.enable(console)
    try:
        stage()
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Live progress with an ETA on the stage console (shown also when the caller did not `enable`
    progress: the CLI commands use this directly); yields `advance(n)`."""
    with progress.shown_on(console), progress.task(description, total) as advance:
        yield advance


def headline_metrics(document: Mapping, keys: Mapping[str, str]) -> dict[str, int | float]:
    """{name: the number at a dotted path of `document`}: {"nna_train": "yardsticks.train_as_generator.nna"}.

    A DVC metrics file is tracked by git and compared across experiments (`dvc exp show`, `dvc metrics
    diff`), so it holds only deterministic numbers, few and short-named (`dvc metrics show` puts every
    name of every file in one row): missing, None and non-finite values are left out (DVC shows `-`),
    booleans become 0/1, and anything else (a string, a list) is a programming error.
    """
    out: dict[str, int | float] = {}
    for name, path in keys.items():
        value: object = document
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, bool):
            out[name] = int(value)
        elif isinstance(value, int | float):
            if math.isfinite(value):
                out[name] = value
        elif value is not None:
            raise TypeError(f"metric {name!r} ({path}) is {type(value).__name__} {value!r}, not a number")
    return out


def write_metrics(
    path: str | os.PathLike, document: Mapping, keys: Mapping[str, str]
) -> dict[str, int | float]:
    """Atomically write the headline numbers of `document` (see `headline_metrics`) as a metrics file."""
    metrics = headline_metrics(document, keys)
    write_json(path, metrics)
    return metrics
