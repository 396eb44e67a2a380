import mlflow

from shd.tracking import flatten_params, log_stage_run, numeric_metrics


def test_stage_run_logs_flat_params_finite_metrics_and_artifacts(tmp_path, monkeypatch):
    assert flatten_params({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == {"a.b": "1", "a.c": "[1, 2]", "d": "x"}
    assert numeric_metrics({"m": 1, "n": {"k": 0.5}, "bad": float("nan"), "flag": True, "s": "x"}) == {
        "m": 1.0,
        "n.k": 0.5,
    }
    monkeypatch.setattr("shd.mlflow_store.DEFAULT_DIR", tmp_path / "mlruns")
    (tmp_path / "report.json").write_text("{}")
    run_id = log_stage_run(
        "stage-test", "unit", {"x": {"y": 2}}, {"score": 0.25}, artifacts=[tmp_path / "report.json"]
    )
    run = mlflow.get_run(run_id)
    assert run.data.params == {"x.y": "2"} and run.data.metrics == {"score": 0.25}
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(run_id)] == ["report.json"]
