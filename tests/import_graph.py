"""The `shd` import graph read from source (AST), so imports inside functions count too: shared by the
layering test and the DVC dependency test."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src"


def module_file(name: str) -> Path | None:
    """The source file of module `name` (`shd.data` -> src/shd/data/__init__.py); None if not a module."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    """The dotted name of a source file under src/ (`src/shd/data/__init__.py` -> `shd.data`)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The `shd` modules a file imports, anywhere in it (`from shd.x import y` counts `shd.x.y` when y is a
    module, and `shd.x` unless every name is a module). Relative imports resolve against the package."""
    package = module_name(path).split(".") if path.is_relative_to(SRC) else []
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in _walk_run_code(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            stem = node.module or ""
            if node.level:
                stem = ".".join(package[: len(package) - node.level + 1] + ([stem] if stem else []))
            subs = {f"{stem}.{a.name}" for a in node.names if module_file(f"{stem}.{a.name}")}
            names.update(subs if len(subs) == len(node.names) else subs | {stem})
    return {n for n in names if n == "shd" or n.startswith("shd.")}


def _walk_run_code(tree: ast.Module) -> Iterable[ast.AST]:
    """Every node of a module except the bodies of a PEP 562 module-level `__getattr__`: those run only when
    someone reads a missing attribute of the module (shd's lazy notebook API), never on import."""
    lazy_hooks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    skip = {id(x) for hook in lazy_hooks for x in ast.walk(hook)}
    return (n for n in ast.walk(tree) if id(n) not in skip)


def with_parents(name: str) -> list[str]:
    """Importing `shd.a.b` runs `shd`, `shd.a` and `shd.a.b`."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(files: Iterable[Path]) -> set[Path]:
    """Every `shd` source file that running `files` may import, transitively (lazy imports included)."""
    todo = list(files)
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        for name in imported_modules(path):
            for module in with_parents(name):
                found = module_file(module)
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    return seen
