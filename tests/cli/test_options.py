"""One meaning per option name across commands, one default model, and help that shows what it says."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from shd.cli import app

runner = CliRunner()
SAMPLING = ("sample", "evaluate", "info", "hybrid", "interpolate", "complete")


def _options(command: str) -> dict[str, object]:
    """Option name -> click parameter of a top-level command."""
    click_cmd = typer.main.get_command(app).commands[command]
    return {name: p for p in click_cmd.params for name in getattr(p, "opts", [])}


def test_every_model_option_has_the_same_default():
    defaults = {c: _options(c)["--model"].default for c in SAMPLING}
    assert len(set(defaults.values())) == 1, defaults
    assert all("-m" in _options(c) for c in SAMPLING)


def test_steps_means_ddim_steps_everywhere_and_frames_are_frames():
    for command in ("sample", "hybrid", "interpolate", "complete"):
        assert "DDIM" in _options(command)["--steps"].help, command
    assert "Frames" in _options("interpolate")["--frames"].help


def test_parents_follow_one_naming_scheme():
    parents = {
        c: sorted(o for o in _options(c) if "parent" in o) for c in ("hybrid", "interpolate", "complete")
    }
    assert parents == {
        "hybrid": ["--parent-a", "--parent-b"],
        "interpolate": ["--parent-a", "--parent-b"],
        "complete": ["--parent"],
    }
    for command in ("interpolate", "complete"):
        for old in ("--a", "--b", "--from", "--ddim-steps"):
            assert old not in _options(command)


@pytest.mark.parametrize(
    ("command", "hints"),
    [
        ("hybrid", ["[apps.harmonize]", "[apps.steps]", "[apps.seed]", "[apps.resolution]", "[apps.device]"]),
        ("interpolate", ["[apps.interp_steps]", "[apps.steps]"]),
        ("complete", ["[apps.resample]"]),
    ],
)
def test_help_shows_the_params_yaml_hints(command, hints):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for hint in hints:
        assert hint in result.output, hint
