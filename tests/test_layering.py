"""Imports point one way: data -> fields -> eval -> diffusion -> apps, then tracking, report and sweep,
then the CLI; the shared base modules (errors, atomic writes, config, shards, stage, the MLflow store
location) import none of them. Read from the source (AST), so lazy imports inside functions count too."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "shd"
BASE = {"errors", "atomic", "shards", "config", "stage", "mlflow_store"}
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
    units = set()
    for node in ast.walk(ast.parse(module.read_text())):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
        units.update(n.split(".")[1] for n in names if n.startswith("shd.") and n.count(".") >= 1)
    return units


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
