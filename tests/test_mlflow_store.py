import mlflow

from shd.mlflow_store import ensure_experiment, tracking_uri


def test_local_store_is_sqlite_with_artifacts_under_root(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):  # two stores in one process stay apart
        eid = ensure_experiment("exp", root)
        assert mlflow.get_tracking_uri() == f"sqlite:///{root.resolve()}/mlflow.db"
        assert mlflow.get_experiment(eid).artifact_location == (root / "artifacts").resolve().as_uri()
        assert (root / "mlflow.db").exists()


def test_user_override_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/team.db")
    assert tracking_uri(tmp_path / "local") == f"sqlite:///{tmp_path}/team.db"
