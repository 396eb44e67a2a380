"""torch.compile settings of the training step, one place for the Lightning module and the benchmark.

Modes: `off` (eager), `default` (Inductor: fused element-wise kernels, cuBLAS GEMMs), `max-autotune-gemm`
(also Triton GEMM templates, autotuned per shape, that can fuse the bias + GELU and other element-wise
epilogues into the GEMM; without max-autotune's per-kernel coordinate descent, which compiles for many
minutes on the reference net) and `max-autotune-no-cudagraphs` (torch's own mode).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from shd.diffusion.config import COMPILE_MODES

# Inductor options of the modes torch.compile has no name for
_OPTIONS = {"max-autotune-gemm": {"max_autotune_gemm": True, "coordinate_descent_tuning": False}}


def compile_fn(fn: Callable, mode: str) -> Callable:
    """`fn` itself (`off`) or its compiled form (a function, or a module's wrapper sharing its parameters)."""
    if mode == "off":
        return fn
    if mode in _OPTIONS:
        return torch.compile(fn, options=_OPTIONS[mode])
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {mode!r} is not one of {COMPILE_MODES}")
    return torch.compile(fn, mode=None if mode == "default" else mode)
