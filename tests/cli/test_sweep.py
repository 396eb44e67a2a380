"""`shd sweep` bad input: one line naming the file or key, exit code 2, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from shd.cli import app
from tests.tiny_project import REPO

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_help_lists_sweep_commands() -> None:
    result = runner.invoke(app, ["sweep", "--help"])
    assert result.exit_code == 0
    assert all(c in result.output for c in ("overfit", "diffusion", "apply"))


def test_missing_inputs_are_named(project: Path) -> None:
    assert "data/samples: no sample set" in _error("sweep", "overfit")
    assert "data/weights/manifest.json: missing" in _error("sweep", "diffusion")
    assert "sweeps/best_overfit.yaml: missing" in _error("sweep", "apply", "overfit")
    assert "unknown sweep kind" in _error("sweep", "apply", "evaluate")
    assert not (project / "sweeps").exists()


def test_bad_space_is_named(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["sweep"]["overfit"]["space"]["lr"] = {"type": "float", "low": 0.1, "high": 0.01}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert "params.yaml:sweep.overfit.space.lr: expected numbers low <= high" in _error("sweep", "overfit")
    params["sweep"]["overfit"]["trails"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert "params.yaml:sweep.overfit.trails: unknown key" in _error("sweep", "overfit")
