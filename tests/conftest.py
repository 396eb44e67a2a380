"""Session-wide fixtures shared by the test packages, Triton's interpreter on CPU-only machines, and the
guard that fails the session when a test wrote into the checkout (tests/checkout_guard.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

# Without a GPU the Triton kernels (chamfer distances, short-sequence attention) run in Triton's
# interpreter, so CI tests them too. Set before any test module imports them: Triton picks the
# interpreter when a kernel is defined.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from tests import checkout_guard
from tests.tiny_project import REPO, make_project, run_stages

_GUARD = pytest.StashKey[checkout_guard.Snapshot]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Snapshot the checkout (not in xdist workers: the controller guards the whole session)."""
    if not hasattr(session.config, "workerinput") and checkout_guard.is_git_checkout(REPO):
        session.config.stash[_GUARD] = checkout_guard.snapshot(REPO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session, naming the paths, when the checkout changed while the tests ran."""
    before = session.config.stash.get(_GUARD, None)
    if before is None:
        return
    changes = checkout_guard.changed_paths(before, checkout_guard.snapshot(REPO))
    if changes:
        message = checkout_guard.report(REPO, changes)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("\n" + message, red=True, bold=True)  # after the progress line
        else:
            print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.1 for the session (Debian's `postgresql`, see shd.postgres).
    Skips when it is not installed, except in CI (CI=true), where `.ci/run` installs it and a missing
    server is a failure."""
    from shd import postgres as pg

    if pg.bin_dir() is None:
        message = "PostgreSQL not installed (apt-get install -y postgresql): team-setup tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = pg.start()
    yield server
    server.stop("immediate")
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture
def pg_database(postgres, request) -> str:
    """The URL of a new empty database on the session's server, one per test."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50] + f"_{os.getpid()}"
    return postgres.create_database(name)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A tiny project after prepare -> ... -> evaluate (real stages, ~1 min on 2 cores), shared by the
    session. Its products: data/weights, models/diffusion/model (exported model), metrics/*.json and
    an MLflow store in mlruns/. Treat it as read-only; copy what a test changes."""
    return run_stages(make_project(tmp_path_factory.mktemp("tiny_project")))
