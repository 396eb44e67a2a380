"""The quality table's row builders on box-field weight sets (tests/eval/evaluate_data.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from shd.data.sample_store import SampleSet
from shd.errors import InputError
from shd.eval import evaluate as ev
from shd.eval.evaluate import EvaluateConfig
from shd.eval.quality_table import (
    ROW_KEYS,
    ROW_NAMES,
    noise_verdict,
    noisy_weights,
    protocol,
    score_train_as_generator,
    score_weights,
    table_document,
    table_markdown,
    without_points,
)
from shd.fields.weight_set import WeightSet

from .evaluate_data import PARTS, make_project

CFG = EvaluateConfig(resolution=24, n_points=128, render_count=0, device="cpu", nna_resamples=200)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("table"), n_surface=128)


@pytest.fixture(scope="module")
def clouds(project):
    samples = SampleSet.open(project.samples)
    return ev.surface_clouds(samples, samples.ids(split="test")), ev.surface_clouds(
        samples, samples.ids(split="train")
    )


def test_noise_is_sigma_times_the_models_std_per_scalar_and_seeded():
    flat = torch.zeros(4000, 3)
    std = torch.tensor([1.0, 10.0, 0.0])
    out = noisy_weights(flat, std, 0.3, seed=1)
    np.testing.assert_allclose(out.std(0).numpy(), [0.3, 3.0, 0.0], rtol=0.05)
    assert torch.equal(out, noisy_weights(flat, std, 0.3, seed=1))
    assert not torch.equal(out, noisy_weights(flat, std, 0.3, seed=2))
    assert torch.equal(noisy_weights(flat + 2, std, 0.0, seed=1), flat + 2)
    with pytest.raises(InputError, match="normalization std"):
        noisy_weights(flat, torch.ones(4), 0.1, seed=0)
    with pytest.raises(InputError, match="sigma"):
        noisy_weights(flat, std, -0.1, seed=0)


def test_a_weight_row_is_the_evaluate_stage_row_with_its_scatter_points(project, clouds):
    reference, train = clouds
    weights = WeightSet.open(project.weights)
    flat = weights.load_flat(weights.ids(split="train"))
    row = score_weights("noise_low", flat, weights.layout, weights.field, reference, train, CFG, PARTS)
    assert set(ROW_KEYS) <= set(row) and row["name"] == "noise_low"
    direct = ev.evaluate_weight_vectors(
        flat, weights.layout, weights.field, reference, train, cfg=CFG, part_names=PARTS
    )
    m = ev.json_ready(direct["metrics"])
    assert (row["mmd"], row["cov"], row["nna"], row["nna_ci95"]) == (
        m["mmd"],
        m["cov"],
        m["nna"],
        m["nna_ci95"],
    )
    assert row["n_generated"] == len(flat) and row["n_empty"] == m["n_empty"] == 0
    pts = row["points"]
    assert len(pts["nearest_train_cd"]) == len(pts["nearest_test_cd"]) == row["n_evaluated"] == len(reference)
    assert row["novelty_median_cd"] == pytest.approx(m["novelty"]["median_nearest_train"])
    assert row["median_nearest_test_cd"] == pytest.approx(np.median(pts["nearest_test_cd"]))


def test_train_as_generator_row_reuses_the_yardstick_and_has_zero_novelty(clouds):
    reference, train = clouds
    row = score_train_as_generator(train, reference, CFG, PARTS)
    yardstick = ev.json_ready(ev.train_as_generator(train, reference, CFG, PARTS))
    assert (row["mmd"], row["nna"], row["nna_ci95"]) == (
        yardstick["mmd"],
        yardstick["nna"],
        yardstick["nna_ci95"],
    )
    assert row["novelty_median_cd"] == 0.0 and set(row["points"]["nearest_train_cd"]) == {0.0}
    assert row["n_empty"] == 0 and len(row["points"]["nearest_test_cd"]) == row["n_evaluated"]


def _row(name, novelty, test_cd, nna=0.6):
    return {
        "name": name,
        "mmd": 0.01,
        "cov": 0.5,
        "nna": nna,
        "nna_ci95": [nna - 0.05, nna + 0.05],
        "n_generated": 11,
        "n_empty": 1,
        "novelty_median_cd": novelty,
        "median_nearest_test_cd": test_cd,
        "points": {"nearest_train_cd": [novelty], "nearest_test_cd": [test_cd]},
    }


def test_table_document_orders_rows_names_missing_ones_and_refuses_unknown():
    proto = protocol(CFG, n_references=606, n_train=3237)
    rows = [
        _row("noise_high", 0.04, 0.06),
        _row("moe_ddim50", 0.02, 0.03),
        _row("train_as_generator", 0.0, 0.05),
    ]
    table = table_document(
        rows, proto, stages={"train": 120.0}, wall_seconds=500.0, commit="abc", command="make repro"
    )
    assert [r["name"] for r in table["rows"]] == ["moe_ddim50", "train_as_generator", "noise_high"]
    assert table["missing_rows"] == [
        n for n in ROW_NAMES if n not in {"moe_ddim50", "train_as_generator", "noise_high"}
    ]
    for key in ("wall_seconds", "stages", "n_references", "normalization", "commit", "command"):
        assert table[key] is not None, key
    assert table["n_references"] == 606 and table["normalization"] == "unit_std"
    assert "points" not in without_points(table)["rows"][0] and "points" in table["rows"][0]
    with pytest.raises(InputError, match="moe_ddim5"):
        table_document([_row("moe_ddim5", 0.0, 0.0)], proto)


def test_verdict_places_a_row_against_the_noise_curve_at_its_novelty():
    # memorizer curve through (0, 0.05), (0.02, 0.06), (0.04, 0.08): at novelty 0.03 it is at 0.07
    memorizers = [
        _row("train_as_generator", 0.0, 0.05),
        _row("noise_low", 0.02, 0.06),
        _row("noise_high", 0.04, 0.08),
    ]
    proto = protocol(CFG, 3, 6)
    closer = table_document([*memorizers, _row("moe_ddim50", 0.03, 0.065)], proto)
    farther = table_document([*memorizers, _row("moe_ddim50", 0.03, 0.075)], proto)
    novel = table_document([*memorizers, _row("moe_ddim50", 0.09, 0.075)], proto)
    assert (
        "closer to the test set than the noise baselines at equal novelty (0.07)" in noise_verdict(closer)[0]
    )
    assert "farther from the test set" in noise_verdict(farther)[0]
    assert "more novel" in noise_verdict(novel)[0]
    text = table_markdown(closer)
    assert "| moe_ddim50 | 0.01 | 0.500 | 0.600 | 0.550-0.650 | 11 | 1 | 0.03 | 0.065 |" in text
    assert "Not scored in this run: moe_ddpm500, moe_ddim10, single." in text


def test_rows_are_scored_under_the_same_protocol(project, clouds):
    reference, train = clouds
    weights = WeightSet.open(project.weights)
    flat = weights.load_flat(weights.ids(split="train"))
    bbox = score_weights(
        "noise_low", flat, weights.layout, weights.field, reference, train, replace(CFG, normalization="bbox")
    )
    usual = score_weights("noise_low", flat, weights.layout, weights.field, reference, train, CFG)
    assert not math.isclose(bbox["mmd"], usual["mmd"])  # the normalization is the config's, for every row
