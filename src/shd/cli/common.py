"""What every `shd` command shares: one-line errors with exit code 2, the device option."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from shd.errors import InputError


def clear_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


Device = typer.Option(help="Where to compute: auto (CUDA when present), cpu or cuda.")
