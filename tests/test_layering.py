"""Imports point one way: data -> fields -> eval -> diffusion -> apps, then tracking, report and sweep,
then the CLI; the shared base modules (errors, atomic writes, config, shards, stage, paths, devices, JSON
values, the MLflow store location) import none of them. No module imports itself through others (no
cycles). The stage scripts (pipelines/) and benchmarks may use any of `shd` but not each other. Read from
the source (AST), so lazy imports inside functions count too."""

import ast
from pathlib import Path

import pytest

from tests.import_graph import ROOT, imported_modules, module_file, module_name

SRC = ROOT / "src" / "shd"
BASE = {
    "errors",
    "atomic",
    "shards",
    "config",
    "stage",
    "mlflow_store",
    "paths",
    "devices",
    "jsonio",
    "progress",
}
LAYER = {
    **dict.fromkeys(BASE, 0),
    "data": 1,
    "fields": 2,
    "eval": 3,
    "diffusion": 4,
    "apps": 5,
    "tracking": 6,
    "report": 7,
    "sweep": 7,
    "api": 8,  # the notebook API (shd.load_model, shd.mesh, ...)
    "cli": 9,
}


def _unit(module: Path) -> str:
    """The layer unit of a source file: its subpackage, or its own name at the top level."""
    parts = module.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imported_units(module: Path) -> set[str]:
    return {n.split(".")[1] for n in imported_modules(module) if n.count(".") >= 1}


MODULES = sorted(p for p in SRC.rglob("*.py") if _unit(p) in LAYER)


def test_every_module_has_a_layer():
    units = {_unit(p) for p in SRC.rglob("*.py")} - {"__init__", "__main__"}
    assert units <= set(LAYER), sorted(units - set(LAYER))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_one_way(module):
    unit = _unit(module)
    level = LAYER[unit]
    # base modules may use each other; any other unit only units of lower layers
    upward = sorted(
        u
        for u in _imported_units(module) - {unit}
        if LAYER.get(u, 99) > level or (LAYER.get(u, 99) == level and level > 0)
    )
    assert not upward, f"{module.relative_to(SRC)} ({unit}) imports {upward}"


def _edges(path: Path) -> set[Path]:
    """The `shd` source files a file imports directly (packages by their __init__)."""
    return {f for f in map(module_file, imported_modules(path)) if f is not None and f != path}


def find_cycle(files: list[Path]) -> list[str] | None:
    """One import cycle among `files` (module names, first == last), or None (iterative DFS)."""
    state: dict[Path, int] = {}  # 1 = on the current path, 2 = done
    for start in files:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(_edges(start))))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                loop = path[path.index(child) :] + [child]
                return [module_name(f) for f in loop]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(_edges(child)))))
    return None


def test_no_import_cycles():
    cycle = find_cycle(MODULES)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_is_found(tmp_path, monkeypatch):
    """The check sees a lazy import that closes a loop (the old export <-> sampler one)."""
    pkg = tmp_path / "src" / "shd" / "loop"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from shd.loop.b import g\n")
    (pkg / "b.py").write_text("def g():\n    from shd.loop import a\n")
    monkeypatch.setattr("tests.import_graph.SRC", tmp_path / "src")
    assert find_cycle([pkg / "a.py"]) == ["shd.loop.a", "shd.loop.b", "shd.loop.a"]


SCRIPTS = sorted([*(ROOT / "pipelines").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])


PROJECT = {"pipelines", "benchmarks", "tests"}


def _local_imports(script: Path) -> set[str]:
    """Project files a file imports by top-level name: pipelines, benchmarks, tests, or its own siblings."""
    names = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n in PROJECT or (script.parent / f"{n}.py").exists()}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_use_shd_but_not_each_other(script):
    """A stage script imports only `shd`; a benchmark also its folder's shared helpers (common.py)."""
    allowed = {"common"} if script.parent.name == "benchmarks" else set()
    assert _local_imports(script) <= allowed, f"{script.relative_to(ROOT)} imports {_local_imports(script)}"
    missing = [n for n in imported_modules(script) if module_file(n) is None]
    assert not missing, f"{script.relative_to(ROOT)} imports {missing}, which are not shd modules"


def test_the_library_imports_no_script_or_test():
    for module in MODULES:
        assert not _local_imports(module) & PROJECT, module
