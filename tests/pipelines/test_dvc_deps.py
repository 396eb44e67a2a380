"""dvc.yaml tells the truth: each stage declares the `shd` code its script can run (so editing that code
reruns the stage), the stages stand in pipeline order, and their outputs are the paths of `shd.paths`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from shd import paths
from tests.import_graph import ROOT, SRC, closure

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _path(entry: str | dict) -> str:
    """A deps/outs entry: a path, or {path: options}."""
    return entry if isinstance(entry, str) else next(iter(entry))


def _script(stage: dict) -> Path:
    words = stage["cmd"].split()
    assert words[:2] == ["python", words[1]] and words[1].startswith("pipelines/"), stage["cmd"]
    return ROOT / words[1]


def _unit(source: Path) -> str:
    """What a dependency must name for a source file: its subpackage folder, or a top-level module."""
    rel = source.relative_to(SRC / "shd")
    return str((SRC / "shd" / rel.parts[0]).relative_to(ROOT)).replace("\\", "/")


def required_deps(script: Path) -> set[str]:
    """The `shd` units that running `script` may import, transitively (lazy imports included)."""
    root_init = SRC / "shd" / "__init__.py"
    return {_unit(p) for p in closure([script]) if p != root_init}


def undeclared(stage: dict) -> list[str]:
    deps = [_path(d).rstrip("/") for d in stage["deps"]]
    needed = required_deps(_script(stage)) | {str(_script(stage).relative_to(ROOT))}
    return sorted(u for u in needed if not any(u == d or u.startswith(d + "/") for d in deps))


def test_the_root_package_imports_no_shd_code_on_import():
    """`shd/__init__.py` is left out of the required deps: only right while importing it imports no shd
    module (the notebook API is loaded by its PEP 562 `__getattr__`, on first attribute use)."""
    body = ast.parse((SRC / "shd" / "__init__.py").read_text(encoding="utf-8")).body
    imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(isinstance(n, ast.ImportFrom) and n.module in ("__future__", "typing") for n in imports)
    assert closure([SRC / "shd" / "__init__.py"]) <= {SRC / "shd" / "__init__.py"}


@pytest.mark.parametrize("name", sorted(DVC))
def test_stage_declares_the_code_it_runs(name):
    missing = undeclared(DVC[name])
    assert not missing, f"dvc.yaml stage {name!r} runs {missing} but does not list them in deps"


def test_a_missing_dependency_is_found():
    """The check sees lazy imports: evaluate samples with shd.diffusion inside a function."""
    stage = dict(
        DVC["evaluate"], deps=[d for d in DVC["evaluate"]["deps"] if _path(d) != "src/shd/diffusion"]
    )
    assert "src/shd/diffusion" in undeclared(stage)
    sample = dict(DVC["sample"], deps=["pipelines/sample.py", "src/shd"])  # a parent folder covers
    assert undeclared(sample) == []


def test_stages_stand_in_pipeline_order():
    """Every stage comes after the stages whose outputs it reads."""
    order = list(DVC)
    producer = {_path(o): s for s in order for o in DVC[s].get("outs", []) + DVC[s].get("metrics", [])}
    late = [
        (name, dep, producer[p])
        for name in order
        for dep in map(_path, DVC[name]["deps"])
        for p in producer
        if (dep == p or dep.startswith(p + "/")) and order.index(producer[p]) > order.index(name)
    ]
    assert not late, f"stages read outputs of later stages: {late}"
    assert order == ["prepare", "validate", "sample", "overfit", "train", "evaluate", "register"]


def test_outputs_are_the_paths_of_shd_paths():
    known = {str(v) for v in vars(paths).values() if isinstance(v, Path)}
    outs = {
        _path(o) for stage in DVC.values() for key in ("outs", "metrics", "plots") for o in stage.get(key, [])
    }
    assert outs <= known, f"dvc.yaml outputs not in shd.paths: {sorted(outs - known)}"


def test_every_stage_script_is_a_stage():
    """pipelines/ holds only DVC stages (other entry points are CLI commands)."""
    scripts = {str(_script(s).relative_to(ROOT)) for s in DVC.values()}
    assert scripts == {str(p.relative_to(ROOT)) for p in (ROOT / "pipelines").glob("*.py")}
