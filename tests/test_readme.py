"""The README tells the truth: its `shd` examples parse with today's options, its stage times are a
measured run's (BENCHMARKS.md repro_cpu), it points at REFERENCE.md where that file lives, and it covers
the DVC experiment flow, offline plots and the Python API."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer.main

import shd
from shd.cli import app

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _shd_examples() -> list[str]:
    """Every `shd ...` command line in the README's bash blocks (placeholders filled in)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("shd "):
                    part = re.sub(r"<[^>]+>", "X", part).replace("[", "").replace("]", "")
                    lines.append(part)
    return lines


def test_every_shd_example_parses_with_the_current_options():
    examples = _shd_examples()
    assert len(examples) >= 10
    root = typer.main.get_command(app)
    for line in examples:
        args = shlex.split(line, comments=True)[1:]
        if "--help" in args:
            continue  # help parses by definition (and exits)
        with root.make_context("shd", list(args), resilient_parsing=False) as ctx:
            name, cmd, sub = "shd", root, list(args)
            while hasattr(cmd, "resolve_command") and sub and not sub[0].startswith("-"):
                name, cmd, sub = cmd.resolve_command(ctx, sub)
                if cmd is None:
                    raise AssertionError(f"unknown command in README: {line}")
            assert not hasattr(cmd, "resolve_command"), f"no command in README example: {line}"
            try:
                cmd.make_context(name, sub, parent=ctx)
            except Exception as exc:  # typer's own click: NoSuchOption, BadParameter, ...
                raise AssertionError(f"README example does not parse: {line}\n  {exc}") from None


def test_stage_times_are_those_of_a_measured_run():
    profile = README.split("### Profiles", 1)[1].split("<!-- stage times:", 1)[0]
    figures = re.findall(r"(\d[\d,]*) s\b", profile)
    assert len(figures) >= 4, profile
    bench = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    repro = bench.split("<!-- bench:repro_cpu -->", 1)[1].split("<!-- /bench:repro_cpu -->", 1)[0]
    for figure in figures:
        assert re.search(rf"\b{figure}(\.\d+)? s\b", repro), f"{figure} s is not in BENCHMARKS.md repro_cpu"


def test_reference_md_is_named_where_it_lives():
    for line in README.splitlines():
        if "REFERENCE.md" in line:
            assert "../shared/REFERENCE.md" in line and "shared folder" in line, line
    assert not (ROOT / "REFERENCE.md").exists()  # it is not in the repository


def test_covers_dvc_experiments_offline_plots_and_the_python_api():
    for text in ("dvc exp run -S", "dvc exp show", "dvc plots show --open", "reports/eval_grid.png"):
        assert text in README, text
    api = README.split("## Python API", 1)[1].split("\n## ", 1)[0]
    for name in shd.__all__:
        assert f"shd.{name}(" in api, name
    assert "model.sample(" in api
