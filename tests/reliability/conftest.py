"""Fixtures of the reliability suites: copies of the session's tiny project for the kill tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.reliability.killing import copy_project


@pytest.fixture
def project_copy(tiny_project: Path, tmp_path: Path) -> Callable[..., Path]:
    """Factory: a copy of the tiny project keeping `keep` products, with params sections updated."""

    def make(keep: tuple[str, ...], name: str = "p", **sections: dict) -> Path:
        root = copy_project(tiny_project, tmp_path / name, keep)
        params = yaml.safe_load((root / "params.yaml").read_text())
        for section, values in sections.items():
            _merge(params.setdefault(section, {}), values)
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        return root

    return make


def _merge(into: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
