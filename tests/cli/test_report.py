"""`shd report RUN`: a project folder or an MLflow evaluate run id -> the HTML report."""

from __future__ import annotations

import json
import re

import mlflow
import pytest
from typer.testing import CliRunner

from shd.cli import app
from shd.eval.evaluate import EvalPaths, EvaluateConfig
from shd.report.viewer import three_js
from shd.tracking.evaluation import log_evaluation
from tests.report.boxes import build_box_report

runner = CliRunner()


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    return build_box_report(tmp_path_factory.mktemp("boxes"))


def _viewers(html: str) -> int:
    return html.count('class="viewer" data-mesh=')


def test_folder_report_is_self_contained(boxes, tmp_path):
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["report", str(boxes), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    html = out.read_text()
    assert _viewers(html) > 0 and html.count(three_js()) == 1  # one shared copy of three.js
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched
    assert "<link" not in html and "@import" not in html
    keys = set(re.findall(r'data-mesh="([^"]+)"', html))
    assert all(f'id="mesh-{k}"' in html for k in keys)  # every viewer's mesh is on the page
    assert "Application: hybrid" in html and "cd.child_to_parent_a" in html  # the app panel


def test_run_id_report_downloads_the_run_and_logs_the_page(boxes, tmp_path, monkeypatch):
    monkeypatch.chdir(boxes)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (boxes / "params.yaml").write_text("{}\n")  # a project root: the local MLflow store lives under it
    report = json.loads((boxes / "reports/eval.json").read_text())
    run_id = log_evaluation(
        report, "data/weights", "data/samples", EvalPaths(), EvaluateConfig(render_count=0)
    )
    out = tmp_path / "run.html"
    result = runner.invoke(app, ["report", run_id, "--project", str(boxes), "--out", str(out), "--log"])
    assert result.exit_code == 0, result.output
    assert f"MLflow run {run_id}" in out.read_text() and _viewers(out.read_text()) > 0
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"eval.json", "samples.json", "generated.safetensors", "run.html"} <= logged


def test_the_evaluate_stage_logged_its_report(tiny_project, tmp_path):
    """After the pipeline, the evaluate run in MLflow has the page (what the MLflow UI opens)."""
    from shd.mlflow_store import tracking_uri

    mlflow.set_tracking_uri(tracking_uri(tiny_project / "mlruns"))
    runs = mlflow.search_runs(experiment_names=["shd-evaluate"], output_format="list")
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    assert "eval_report.html" in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    out = tmp_path / "again.html"
    result = runner.invoke(app, ["report", run_id, "--project", str(tiny_project), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert 'id="metrics"' in out.read_text()


def test_bad_input_is_one_line_and_exit_2(boxes, tmp_path):
    result = runner.invoke(app, ["report", "no-such-thing"])
    assert result.exit_code == 2 and "a project folder or a 32-hex-digit MLflow run id" in result.output
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "eval.json: missing" in result.output
    result = runner.invoke(app, ["report", "0" * 32, "--project", str(boxes)])
    assert result.exit_code == 2 and f"MLflow run {'0' * 32}" in result.output
    result = runner.invoke(app, ["report", str(boxes), "--log", "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "--log" in result.output
