"""One place that turns a model reference given by a user into a sampler.

A reference is an exported model folder (what the `train` stage writes to `models/diffusion`).
Registry (`models:/name@alias`) and run (`runs:/<id>/...`) URIs resolve to such a folder too.
"""

from __future__ import annotations

from pathlib import Path

import torch

from shd.diffusion.export import load_model
from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError


def resolve_model_folder(ref: str) -> Path:
    """The local exported-model folder a reference names."""
    path = Path(ref)
    if path.is_dir():
        return path
    raise InputError(ref, "no such model: expected an exported model folder (e.g. models/diffusion)")


def load_sampler(ref: str, device: str = "auto") -> WeightSampler:
    """Load the model a reference names on `device` ('auto' = CUDA when present)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda", "no CUDA device is available here; use --device cpu or auto")
    return load_model(resolve_model_folder(ref), device=device)
