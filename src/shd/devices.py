"""Where to compute: one reading of the `auto | cpu | cuda[:i]` device options of params.yaml and the CLI.

A base module (no shd imports beyond errors) so every layer resolves devices the same way: `auto` is
CUDA when torch sees one, and a CUDA device asked for on a machine without one is an input error that
names the option, not a crash deep inside a stage.
"""

from __future__ import annotations

import torch

from shd.errors import InputError


def resolve_device(name: str, where: str) -> torch.device:
    """`auto` -> cuda if available else cpu; `cpu`, `cuda`, `cuda:<i>` as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, str) or name.split(":")[0] not in ("cpu", "cuda"):
        raise InputError(where, f"expected auto, cpu, cuda or cuda:<index>, got {name!r}")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(where, f"expected auto, cpu, cuda or cuda:<index>, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(where, f"{name} asked for, but torch sees no CUDA device")
    return device
