import mlflow

from shd.tracking import ensure_experiment, tracking_uri


def test_local_store_is_sqlite_with_artifacts_under_root(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):  # two stores in one process stay apart
        eid = ensure_experiment("exp", root)
        assert mlflow.get_tracking_uri() == f"sqlite:///{root.resolve()}/mlflow.db"
        assert mlflow.get_experiment(eid).artifact_location == (root / "artifacts").resolve().as_uri()
        assert (root / "mlflow.db").exists()


def test_user_override_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/team.db")
    assert tracking_uri(tmp_path / "local") == f"sqlite:///{tmp_path}/team.db"


def test_stage_run_logs_flat_params_finite_metrics_and_artifacts(tmp_path, monkeypatch):
    from shd.tracking import flatten_params, log_stage_run, numeric_metrics

    assert flatten_params({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == {"a.b": "1", "a.c": "[1, 2]", "d": "x"}
    assert numeric_metrics({"m": 1, "n": {"k": 0.5}, "bad": float("nan"), "flag": True, "s": "x"}) == {
        "m": 1.0, "n.k": 0.5}
    monkeypatch.setattr("shd.tracking.store.DEFAULT_DIR", tmp_path / "mlruns")
    (tmp_path / "report.json").write_text("{}")
    run_id = log_stage_run("stage-test", "unit", {"x": {"y": 2}}, {"score": 0.25},
                           artifacts=[tmp_path / "report.json"])
    run = mlflow.get_run(run_id)
    assert run.data.params == {"x.y": "2"} and run.data.metrics == {"score": 0.25}
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(run_id)] == ["report.json"]
