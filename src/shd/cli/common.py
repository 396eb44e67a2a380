"""What every `shd` command shares: one-line errors with exit code 2, the options several commands take
(the default model is the API's), argument checks that run before the heavy imports, and `--out`
folders that a failure does not leave behind.

Modules here import only the standard library, Typer, `shd.errors` and the light `shd.api`:
`shd --help` and an argument error must not pay for torch, MLflow or Lightning (seconds each).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import typer
from typer.models import OptionInfo

from shd.api import DEFAULT_MODEL, missing_extra  # noqa: F401  (DEFAULT_MODEL: re-exported)
from shd.errors import InputError

MODEL_HELP = (
    "Model: an exported model folder (default: the train stage's), a training checkpoint (.ckpt), "
    "models:/<name>@<alias>, models:/<name>/<version>, runs:/<run_id>/<path> or a run id."
)
PARENT_HELP = (
    "a shape id of the weight set (e.g. proc-airplane-00003) or sample:<seed> "
    "(a shape sampled from the model with that seed, e.g. sample:7)."
)


def clear_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError, and a pipeline library missing from a light install, into one line on stderr
    and exit code 2. The library names the parameter that was wrong (`parts_a`, `n`); the line names
    the command's flag for it (`--parts-a`, `-n`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            typer.echo(f"error: {as_flags(exc, fn)}", err=True)
            raise typer.Exit(2) from None
        except ModuleNotFoundError as exc:
            error = missing_extra(exc)
            if error is None:
                raise
            typer.echo(f"error: {error}", err=True)
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


Device = typer.Option(help="Where to compute: auto (CUDA when present), cpu or cuda[:index].")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(name: str | None, where: str = "--device") -> None:
    """The device name's spelling, checked before torch is imported (whether CUDA exists: later)."""
    if name is not None and not _DEVICE.fullmatch(name):
        raise InputError(where, f"expected auto, cpu, cuda or cuda:<index>, got {name!r}")


def check_model(ref: str) -> None:
    """A model reference that is neither a registry/run URI, a run id nor an existing path is refused
    at once (resolving the others needs MLflow or torch)."""
    if ref.startswith(("models:/", "runs:/")) or re.fullmatch(r"[0-9a-f]{32}", ref) or Path(ref).exists():
        return
    raise InputError(
        ref,
        "no such model: expected an exported model folder (e.g. models/diffusion/model), a .ckpt, "
        "models:/<name>@<alias>, models:/<name>/<version> or runs:/<id>/<path>",
    )


class MeshFormat(StrEnum):
    """Mesh file formats `shd.eval.export` writes (a test keeps the two lists equal)."""

    obj = "obj"
    ply = "ply"
    glb = "glb"


def check_choice(value: str, choices: type[Enum], where: str) -> str:
    """`value` when it is one of the Enum's values, else an InputError listing them."""
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise InputError(where, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def make_out_folder(path: Path) -> list[Path]:
    """Create the output folder or say in one line why it cannot be; returns the folders it created
    (deepest first)."""
    if path.exists() and not path.is_dir():
        raise InputError(path, "exists and is not a folder; expected an output folder")
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(path, f"cannot create the output folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK):
        raise InputError(path, "output folder is not writable")
    return created


@contextmanager
def out_folder(path: Path) -> Iterator[Path]:
    """The `--out` folder for the block; when the block fails, the folders it created that are still
    empty are removed again, so a failed command leaves no empty output folder behind."""
    created = make_out_folder(path)
    try:
        yield path
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()  # only empty folders go
            except OSError:
                break
        raise
