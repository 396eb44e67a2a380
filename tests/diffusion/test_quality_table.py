"""The whole quality table on a tiny CPU config: box-field weight sets (tests/eval/evaluate_data.py), a
one-block denoiser trained for a few steps, the single-MLP baseline trained the same way, every row
meshed at 16^3 and scored against the 3 test shapes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from shd.diffusion.export import read_config
from shd.diffusion.quality_table import (
    MOE_SAMPLERS,
    TableInputs,
    build_quality_table,
    model_folder,
    train_single_baseline,
)
from shd.diffusion.train import train
from shd.errors import InputError
from shd.eval.evaluate import EvaluateConfig
from shd.eval.quality_table import ROW_KEYS, ROW_NAMES
from tests.eval.evaluate_data import make_project

CFG = EvaluateConfig(resolution=16, n_points=64, render_count=0, device="cpu", nna_resamples=100)
TRAIN = {
    "net": {"depth": 1, "width": 32, "heads": 2},
    "train": {
        "batch_size": 4,
        "max_epochs": 2,
        "epoch_repeat": 2,
        "val_every": 0,
        "log_every": 50,
        "checkpoint_every": 2,
        "log_model": False,
    },
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The box project with a trained semantic model and a single-MLP baseline trained from it."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("table")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        project = make_project(root, n_surface=64)
        store = root / "mlruns"
        moe = train(project.weights, TRAIN, root / "moe", tracking_root=store)
        single = train_single_baseline(project.baseline, root / "moe", root / "single", tracking_root=store)
    return project, root, moe, single


@pytest.mark.slow
def test_the_single_baseline_is_trained_like_the_semantic_model(trained):
    _, root, moe, single = trained
    assert single["global_step"] == moe["global_step"] > 0  # equal optimizer steps
    a, b = read_config(model_folder(root / "moe")), read_config(model_folder(root / "single"))
    assert a["net"] == b["net"] and a["schedule"] == b["schedule"]
    same = {k: v for k, v in a["train"].items() if k not in ("max_steps", "max_epochs")}
    assert same == {k: v for k, v in b["train"].items() if k in same}
    assert b["field"]["n_experts"] == 1 and a["field"]["n_experts"] == 4


@pytest.mark.slow
def test_every_row_is_scored_written_and_resumed(trained, tmp_path):
    project, root, _, _ = trained
    inputs = TableInputs(project.weights, project.samples, root / "moe", project.baseline, root / "single")
    out = tmp_path / "quality_table.json"
    seen = []
    table = build_quality_table(
        inputs,
        CFG,
        out,
        stages={"train": 1.0},
        wall_seconds=2.0,
        commit="c",
        command="x",
        progress=seen.append,
    )
    assert [r["name"] for r in table["rows"]] == list(ROW_NAMES) and table["missing_rows"] == []
    assert [s["row"] for s in seen] == list(ROW_NAMES)
    for row in table["rows"]:
        assert set(ROW_KEYS) <= set(row), row["name"]
        assert row["n_generated"] == 4  # 1.1 x 3 references, rounded up
        assert len(row["points"]["nearest_test_cd"]) == row["n_evaluated"]
    rows = {r["name"]: r for r in table["rows"]}
    assert {rows[n]["sampler"] for n in MOE_SAMPLERS} == {"ddpm-500", "ddim-50", "ddim-10"}
    assert rows["noise_low"]["sigma"] == 0.1 and rows["noise_high"]["sigma"] == 0.3
    assert rows["single"]["train_steps"] == table["semantic_model"]["train_steps"] > 0
    assert json.loads(out.read_text()) == table
    assert table["n_references"] == 3 and table["normalization"] == "unit_std" and table["command"] == "x"

    again = []
    assert build_quality_table(inputs, CFG, out, progress=again.append)["rows"] == table["rows"]
    assert again == []  # every row resumed from the file
    coarser = build_quality_table(inputs, replace(CFG, resolution=12), out, progress=again.append)
    assert (
        len(again) == len(ROW_NAMES) and coarser["protocol"]["resolution"] == 12
    )  # another protocol: rescored


@pytest.mark.slow
def test_missing_baseline_is_listed_and_a_wrong_layout_refused(trained, tmp_path):
    project, root, _, _ = trained
    table = build_quality_table(
        TableInputs(project.weights, project.samples, root / "moe", rows=("single", "noise_low")),
        CFG,
        tmp_path / "t.json",
    )
    assert [r["name"] for r in table["rows"]] == ["noise_low"] and "single" in table["missing_rows"]
    with pytest.raises(InputError, match="another weight layout"):
        build_quality_table(
            TableInputs(project.weights, project.samples, root / "single", rows=("moe_ddim10",)),
            CFG,
            tmp_path / "u.json",
        )
