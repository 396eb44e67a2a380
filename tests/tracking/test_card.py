"""The model card: sampling defaults follow EvaluateConfig, and building a card leaves its inputs alone."""

from __future__ import annotations

import copy

from shd.eval.config import EvaluateConfig
from shd.tracking.card import build_card
from tests.tracking.conftest import PARTS, eval_report, export_tiny_model


def test_card_sampling_defaults_come_from_evaluate_config(tmp_path, monkeypatch):
    """No `evaluate` params: the card's sampling settings are EvaluateConfig's defaults, whatever they are
    (changed here to values nobody would type twice)."""
    folder = export_tiny_model(tmp_path / "m")
    card = build_card(folder, eval_report(0.5), ["a"], {"airplane": PARTS}, {}, {})
    defaults = EvaluateConfig()
    assert card["sampling"] == {"resolution": defaults.resolution, "level": defaults.level}
    monkeypatch.setattr(EvaluateConfig, "__init__", _init_with(resolution=37, level=0.25))
    card = build_card(folder, eval_report(0.5), ["a"], {"airplane": PARTS}, {}, {})
    assert card["sampling"] == {"resolution": 37, "level": 0.25}
    card = build_card(
        folder, eval_report(0.5), ["a"], {"airplane": PARTS}, {"evaluate": {"resolution": 8}}, {}
    )
    assert card["sampling"]["resolution"] == 8


def _init_with(**changed):
    """EvaluateConfig's constructor with other defaults (a dataclass bakes its defaults into __init__)."""
    original = EvaluateConfig.__init__

    def init(self, **kwargs):
        original(self, **{**changed, **kwargs})

    return init


def test_build_card_does_not_mutate_its_arguments(tmp_path):
    folder = export_tiny_model(tmp_path / "m")
    report, params = eval_report(0.5), {"evaluate": {"resolution": 16}}
    lineage = {"dvc": {"data/weights": "abc.dir"}, "git_commit": "deadbeef"}
    before = copy.deepcopy((report, params, lineage))
    card = build_card(folder, report, ["a"], {"airplane": PARTS}, params, lineage)
    assert (report, params, lineage) == before
    assert card["data"]["dvc"] == {"data/weights": "abc.dir"}
    assert card["lineage"]["git_commit"] == "deadbeef" and "dvc" not in card["lineage"]
    again = build_card(folder, report, ["a"], {"airplane": PARTS}, params, lineage)
    assert again["data"]["dvc"] == card["data"]["dvc"]
