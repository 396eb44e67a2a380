"""The registered pyfunc: load by alias, predict weights and meshes, equal to sampling the folder."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml

from shd.diffusion.api import load_model
from shd.errors import InputError
from shd.mlflow_store import tracking_uri
from shd.tracking.model_ref import load_sampler, resolve_model_folder
from shd.tracking.registry import build_card, register
from tests.tracking.conftest import PARTS, eval_report, export_tiny_model

NAME = "shd-pyfunc-test"


@pytest.fixture(scope="module")
def registered(store, tmp_path_factory):
    folder = export_tiny_model(tmp_path_factory.mktemp("model") / "model", 11)
    card = build_card(
        folder,
        eval_report(0.5),
        ["airplane_t"],
        {"airplane": PARTS},
        {"evaluate": {"resolution": 16}},
        {"dvc": {}, "git_commit": None},
    )
    record = register(folder, card, NAME)
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(tracking_uri())
    return folder, record


def test_logged_model_holds_no_pickle_and_loads_by_alias(registered):
    folder, record = registered
    local = mlflow.artifacts.download_artifacts(f"models:/{NAME}/{record['version']}")
    flavor = yaml.safe_load((Path(local) / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"  # models from code
    assert "python_model" not in flavor and not list(Path(local).rglob("*.pkl"))  # nothing pickled
    assert {p.name for p in (Path(local) / "artifacts" / "model").iterdir()} == {
        "model.safetensors",
        "normalization.safetensors",
        "config.json",
    }
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    out = model.predict({"n": 2, "seed": 3, "steps": 4})
    expected = load_model(folder, "cpu").sample(2, steps=4, seed=3)
    assert torch.equal(torch.from_numpy(out["weights"]), expected) and "meshes" not in out


def test_logged_model_has_a_signature_and_a_torch_requirement_a_cuda_machine_meets(registered):
    _, record = registered
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{record['version']}"))
    inputs = json.loads(yaml.safe_load((local / "MLmodel").read_text())["signature"]["inputs"])
    assert {c["name"]: (c["type"], c["required"]) for c in inputs} == {
        "n": ("long", False),
        "seed": ("long", False),
        "steps": ("long", False),
        "category": ("string", False),
        "guidance": ("double", False),
        "meshes": ("boolean", False),
        "resolution": ("long", False),
        "level": ("double", False),
    }
    requirements = (local / "requirements.txt").read_text().split()
    torch_req = [r for r in requirements if r.startswith("torch")]
    major_minor = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    assert torch_req == [f"torch>={major_minor}"], requirements
    assert not any("+" in r for r in requirements)  # no local build tag such as +cpu
    # a request typed as the schema says (ints where doubles are expected are widened) still samples
    out = mlflow.pyfunc.load_model(f"models:/{NAME}/{record['version']}").predict(
        {"n": 1, "steps": 2, "guidance": 1}
    )
    assert out["weights"].shape[0] == 1


def test_predict_meshes_and_dataframe_requests(registered):
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    out = model.predict(pd.DataFrame([{"n": 2, "seed": 1, "steps": 3, "meshes": True}]))
    assert out["weights"].shape[0] == 2 and len(out["meshes"]) == 2
    mesh = out["meshes"][0]
    assert mesh["status"] == "ok" and mesh["faces"].shape[1] == 3 and len(mesh["vertices"]) > 0
    assert abs(mesh["vertices"]).max() <= 0.5
    with pytest.raises(InputError, match="request.n"):
        model.predict({"n": 0})


def test_references_resolve_to_the_same_model(registered):
    folder, record = registered
    by_alias = resolve_model_folder(f"models:/{NAME}@champion")
    assert by_alias == resolve_model_folder(f"models:/{NAME}/{record['version']}")  # one cache entry
    assert (by_alias / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    run_id = mlflow.MlflowClient().get_model_version(NAME, record["version"]).run_id
    via_run = load_sampler(f"runs:/{run_id}/model", "cpu").sample(1, steps=2, seed=5)
    assert torch.equal(via_run, load_sampler(str(folder), "cpu").sample(1, steps=2, seed=5))


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        (f"models:/{NAME}@nobody", "has no alias 'nobody'"),
        ("models:/shd-unknown@champion", "no registered model 'shd-unknown'"),
        (f"models:/{NAME}/99", "not found"),
        ("models:/x/latest", "expected models:/<name>@<alias>"),
        ("/no/such/folder", "no such model"),
    ],
)
def test_bad_references_are_input_errors(registered, ref, says):
    with pytest.raises(InputError, match=says):
        load_sampler(ref, "cpu")


def test_unreachable_server_fails_fast_with_one_message(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(InputError, match="cannot reach the MLflow tracking server"):
        resolve_model_folder("models:/shd-airplane@champion")
