"""Merging best params into params.yaml (ruamel round trip): comments stay, values change, aliases refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shd.errors import InputError
from shd.sweep.best import apply_best, write_best
from shd.sweep.space import merge
from shd.sweep.yaml_edit import update_text
from tests.tiny_project import REPO

UPDATE = {
    "overfit": {"field": {"hidden": [64, 64], "n_freqs": 6}, "lr": 0.00345, "schedule": "cosine"},
    "diffusion": {
        "net": {"width": 96, "depth": 3, "heads": 4},
        "schedule": {"prediction": "eps"},
        "train": {"lr": 0.0003, "normalization": "none"},
    },
}


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def test_repository_params_update_keeps_every_comment() -> None:
    text = (REPO / "params.yaml").read_text()
    new = update_text(text, UPDATE, "params.yaml")
    assert yaml.safe_load(new) == merge(yaml.safe_load(text), UPDATE)
    assert _comments(new) == _comments(text)
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=True) if a != b]
    assert len(changed) == 7  # field, lr, schedule, net, prediction, train.lr, normalization: one line each
    preset = yaml.safe_load(text)["diffusion"]["net"]  # a preset name: the searched keys join it
    assert f"  net: {{preset: {preset}, width: 96, depth: 3, heads: 4}} # tiny" in new


def test_new_keys_and_block_replacement() -> None:
    text = "a:\n  b: 1   # keep\n  c:\n    d: 2\n    e: 3\n# tail comment\nz: 0\n"
    new = update_text(text, {"a": {"c": 5, "n": [1, 2]}, "y": {"k": "v"}}, "t.yaml")
    assert yaml.safe_load(new) == {"a": {"b": 1, "c": 5, "n": [1, 2]}, "z": 0, "y": {"k": "v"}}
    assert "  b: 1   # keep\n" in new and "# tail comment\n" in new


def test_comments_survive_everywhere() -> None:
    """Head, block, end-of-line, between-key and tail comments, and quotes, all kept."""
    text = (
        "# head\nsection:   # the section\n  # before a\n  a: 'x'    # quoted\n  b: null  # nothing\n"
        "  c:\n    d: 1  # deep\n# tail\n"
    )
    new = update_text(text, {"section": {"a": "y", "c": {"d": 2}}}, "t.yaml")
    assert _comments(new) == _comments(text)
    assert "  a: 'y'    # quoted\n" in new and "  b: null  # nothing\n" in new and "    d: 2  # deep\n" in new


def test_unmergeable_layout_is_refused() -> None:
    text = "a: &x\n  b: 1\nc: *x\n"  # an alias: editing a's lines would change c too
    with pytest.raises(InputError, match="merge by hand"):
        update_text(text, {"a": {"b": 2}}, "t.yaml")


def test_apply_best_writes_only_when_something_changes(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    best = tmp_path / "best_diffusion.yaml"
    write_best(best, {"diffusion": UPDATE["diffusion"]}, "diffusion", 3, 0.5625, "1-nna", "diffusion")
    changed = apply_best(params, best)
    assert changed["diffusion.train.lr"] == (0.0002, 0.0003)
    assert changed["diffusion.net.width"] == (None, 96)
    assert yaml.safe_load(params.read_text())["diffusion"]["schedule"]["prediction"] == "eps"
    assert apply_best(params, best) == {}
    best.write_text("nosuch: {a: 1}\n")
    with pytest.raises(InputError, match="no such section"):
        apply_best(params, best)
