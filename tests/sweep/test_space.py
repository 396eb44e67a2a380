"""Search spaces from params.yaml: validation, suggestions, params.yaml-shaped merging."""

from __future__ import annotations

import optuna
import pytest

from shd.config import load_params
from shd.errors import InputError
from shd.sweep.config import sweep_config
from shd.sweep.space import merge, nest, parse_space, suggest
from tests.tiny_project import REPO


def test_repository_sweep_section_parses() -> None:
    sc = sweep_config(load_params(REPO / "params.yaml"))
    assert {"field.width", "field.depth", "field.n_freqs", "lr", "schedule"} == {
        d.name for d in sc.kind("overfit").space
    }
    diffusion = sc.kind("diffusion")
    assert {
        "net.width",
        "net.depth",
        "net.heads",
        "train.lr",
        "schedule.prediction",
        "train.normalization",
    } == {d.name for d in diffusion.space}
    heads = next(d for d in diffusion.space if d.name == "net.heads").choices
    width = next(d for d in diffusion.space if d.name == "net.width")
    assert all(w % h == 0 for w in range(width.low, width.high + 1, width.step) for h in heads)


@pytest.mark.parametrize(
    "raw, where",
    [
        ({"lr": {"type": "float", "low": 1.0, "high": 0.1}}, "s.lr"),
        ({"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, "s.lr"),
        ({"n": {"type": "int", "low": 1, "high": 2.5}}, "s.n"),
        ({"p": {"type": "categorical", "choices": []}}, "s.p.choices"),
        ({"p": {"type": "uniform", "low": 0, "high": 1}}, "s.p"),
        ({"p": {"type": "int", "low": 0, "high": 1, "stepp": 1}}, "s.p.stepp"),
        ({}, "s"),
    ],
)
def test_bad_spaces_name_the_key(raw: dict, where: str) -> None:
    with pytest.raises(InputError) as err:
        parse_space(raw, "s")
    assert err.value.where == where


def test_suggestions_stay_in_the_space() -> None:
    dims = parse_space(
        {
            "net.width": {"type": "int", "low": 32, "high": 128, "step": 32},
            "train.lr": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
            "schedule.prediction": ["x0", "eps", "v"],
        },
        "s",
    )
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for _ in range(20):
        values = suggest(study.ask(), dims)
        assert values["net.width"] in (32, 64, 96, 128)
        assert 1e-4 <= values["train.lr"] <= 1e-3
        assert values["schedule.prediction"] in ("x0", "eps", "v")


def test_nest_and_merge_follow_params_shape() -> None:
    update = nest({"net.width": 96, "net.heads": 4, "train.lr": 3e-4})
    assert update == {"net": {"width": 96, "heads": 4}, "train": {"lr": 3e-4}}
    base = {"net": "tiny", "train": {"lr": 2e-4, "batch_size": 32}, "schedule": {"prediction": "x0"}}
    assert merge(base, update) == {
        "net": {"preset": "tiny", "width": 96, "heads": 4},
        "train": {"lr": 3e-4, "batch_size": 32},
        "schedule": {"prediction": "x0"},
    }
    assert base["train"]["lr"] == 2e-4  # not modified in place
