"""Session-wide fixtures shared by the test packages, and Triton's interpreter on CPU-only machines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Without a GPU the Triton kernels (chamfer distances, short-sequence attention) run in Triton's
# interpreter, so CI tests them too. Set before any test module imports them: Triton picks the
# interpreter when a kernel is defined.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from tests.tiny_project import make_project, run_stages


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A tiny project after prepare -> ... -> evaluate (real stages, ~1 min on 2 cores), shared by the
    session. Its products: data/weights, models/diffusion/model (exported model), metrics/*.json and
    an MLflow store in mlruns/. Treat it as read-only; copy what a test changes."""
    return run_stages(make_project(tmp_path_factory.mktemp("tiny_project")))
