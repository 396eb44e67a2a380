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


def test_store_lives_at_the_project_root_from_any_subfolder(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr("shd.mlflow_store.DEFAULT_DIR", Path("mlruns"))
    (tmp_path / "params.yaml").write_text("{}\n")
    (tmp_path / "data" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "data" / "sub")
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert not (tmp_path / "data" / "sub" / "mlruns").exists()


def test_outside_a_project_there_is_no_store_and_nothing_is_created(tmp_path, monkeypatch):
    from pathlib import Path

    import pytest
    from typer.testing import CliRunner

    from shd.cli import app
    from shd.errors import InputError
    from shd.mlflow_store import project_root

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr("shd.mlflow_store.DEFAULT_DIR", Path("mlruns"))
    monkeypatch.chdir(tmp_path)
    if any((p / m).exists() for p in (tmp_path, *tmp_path.parents) for m in ("dvc.yaml", "params.yaml")):
        pytest.skip("the temporary folder lies inside a project")
    with pytest.raises(InputError, match="not inside an shd project"):
        project_root()
    result = CliRunner().invoke(app, ["info", "--model", "models:/shd-airplane@champion"])
    assert result.exit_code == 2 and "not inside an shd project" in result.output, result.output
    assert list(tmp_path.iterdir()) == []  # no ./mlruns/mlflow.db
