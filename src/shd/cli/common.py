"""What every `shd` command shares: one-line errors with exit code 2, the device option."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import typer
from typer.models import OptionInfo

from shd.errors import InputError


def clear_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError into one line on stderr and exit code 2. The library names the parameter that
    was wrong (`parts_a`, `n`); the line names the command's flag for it (`--parts-a`, `-n`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            typer.echo(f"error: {as_flags(exc, fn)}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def flags(command: Callable[..., Any]) -> dict[str, str]:
    """Parameter name -> the command-line flag Typer gives it (its first declaration, else --name)."""
    hints = typing.get_type_hints(command, include_extras=True)
    out = {}
    for name in inspect.signature(command).parameters:
        options = [m for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, OptionInfo)]
        decls = [d for o in options for d in (o.default, *o.param_decls) if isinstance(d, str)]
        decls = [d for d in decls if d.startswith("-")]
        out[name] = decls[0] if decls else "--" + name.replace("_", "-")
    return out


def as_flags(exc: InputError, command: Callable[..., Any]) -> InputError:
    """`exc` with its leading parameter names (`parts_a/parts_b: ...`) written as the command's flags."""
    head, rest = re.match(r"([a-z_]+(?:/[a-z_]+)*)?(.*)", exc.where, re.S).groups()  # type: ignore[union-attr]
    names = (head or "").split("/")
    known = flags(command)
    if head is None or not all(n in known for n in names):
        return exc
    return InputError("/".join(known[n] for n in names) + rest, exc.problem)


Device = typer.Option(help="Where to compute: auto (CUDA when present), cpu or cuda.")
