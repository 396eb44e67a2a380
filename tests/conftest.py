"""Session-wide fixtures shared by the test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_project import make_project, run_stages


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A tiny project after prepare -> ... -> evaluate (real stages, ~1 min on 2 cores), shared by the
    session. Its products: data/weights, models/diffusion/model (exported model), metrics/*.json and
    an MLflow store in mlruns/. Treat it as read-only; copy what a test changes."""
    return run_stages(make_project(tmp_path_factory.mktemp("tiny_project")))
