"""The `evaluate` stage entry, run in-process in a throwaway project (cwd = its root)."""

from __future__ import annotations

import json
import runpy
import sys
import types
from pathlib import Path

import mlflow
import pytest
import torch
import yaml

from shd.fields.weight_set import WeightSet
from shd.stage import main
from tests.eval.evaluate_data import SPLITS, make_project

ENTRY = Path(__file__).resolve().parents[2] / "pipelines" / "evaluate.py"
TINY = {
    "resolution": 32,
    "render_resolution": 32,
    "n_points": 256,
    "render_count": 2,
    "baseline_weights": "data/weights_single",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    make_project(root)
    return root


@pytest.fixture
def project(built, monkeypatch) -> Path:
    torch.set_num_threads(1)
    monkeypatch.chdir(built)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_params(TINY)
    return built


def write_params(evaluate: dict) -> None:
    Path("params.yaml").write_text(yaml.safe_dump({"evaluate": evaluate}))


def stage_run():
    return runpy.run_path(str(ENTRY))["run"]  # not as __main__: the entry's run() itself


def test_entry_evaluates_test_reconstructions_and_logs_one_run(project):
    stage_run()()
    report = json.loads(Path("reports/eval.json").read_text())
    assert report["generator"] == "test_reconstruction" and report["n_reference"] == SPLITS.count("test")
    assert report["yardsticks"]["single_baseline"]["weights"] == "data/weights_single"
    assert Path("plots/eval/nn_cd.csv").exists() and Path("reports/eval_grid.png").exists()
    runs = mlflow.search_runs(
        experiment_names=["shd-evaluate"],
        output_format="list",
        filter_string="tags.mlflow.runName = 'evaluate-test_reconstruction'",
    )
    assert len(runs) == 1 and runs[0].data.metrics["mmd"] == pytest.approx(report["mmd"])
    assert (
        runs[0].data.metrics["yardsticks.train_as_generator.nna"]
        == report["yardsticks"]["train_as_generator"]["nna"]
    )
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id)}
    assert {
        "eval.json",
        "eval_grid.png",
        "nn_cd.csv",
        "samples.json",
        "generated.safetensors",
        "eval_report.html",
    } <= logged
    assert Path("reports/eval_report.html").read_text().count('class="viewer" data-mesh=') > 0


def test_diffusion_samples_are_evaluated_once_the_model_exists(project, monkeypatch):
    """The hook: with models/diffusion on disk, the diffusion package's sampler supplies the weights."""
    calls = []

    def sample_generated(folder, n, *, category, seed, device, layout):
        ws = WeightSet.open("data/weights")
        assert layout.to_json() == ws.layout.to_json()  # the model's layout is checked against it
        calls.append((Path(folder), n, category, seed))
        return ws.load_flat(ws.ids(split="train"))[:n]

    monkeypatch.setitem(
        sys.modules, "shd.diffusion.api", types.SimpleNamespace(sample_generated=sample_generated)
    )
    (project / "models/diffusion").mkdir(parents=True)
    try:
        write_params({**TINY, "baseline_weights": None})
        stage_run()()
    finally:
        (project / "models/diffusion").rmdir()
    report = json.loads(Path("reports/eval.json").read_text())
    assert calls == [(Path("models/diffusion"), 4, "airplane", 0)]  # ceil(1.1 x 3 references)
    assert report["generator"] == "diffusion" and report["n_generated"] == 4
    assert report["yardsticks"]["single_baseline"] is None


def test_bad_params_end_in_one_line_and_exit_2(project, capsys):
    write_params({**TINY, "resolution": 1})
    with pytest.raises(SystemExit) as exit_:
        main(stage_run())
    assert exit_.value.code == 2
    assert "evaluate.resolution" in capsys.readouterr().err
