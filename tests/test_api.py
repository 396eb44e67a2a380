"""The light install and the notebook API: `import shd` stays light, and without the pipeline extra
(DVC, MLflow, Great Expectations, Optuna blocked from import) a model folder still loads, samples,
meshes, scores and serves the CLI, while registry references say which extra they need."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.tracking.conftest import export_tiny_model

ROOT = Path(__file__).parents[1]
PIPELINE = ("dvc", "mlflow", "great_expectations", "optuna", "optuna_integration")

LIGHT = """
import importlib.abc, json, sys
BLOCKED = set(sys.argv[3].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Block())
folder, out = sys.argv[1], sys.argv[2]
import shd
from typer.testing import CliRunner
from shd.cli import app

model = shd.load_model(folder, "cpu")
weights = model.sample(4, steps=2, seed=0)
meshes = shd.mesh(model, weights, resolution=24)
saved = shd.save_mesh(meshes[0], out + "/one.glb", model)
scores = shd.metrics(meshes[:2], meshes[2:], n_points=256)
cli = CliRunner().invoke(app, ["sample", "--model", folder, "--out", out + "/cli", "-n", "2", "--steps", "2",
                               "--resolution", "24", "--device", "cpu"])
info = CliRunner().invoke(app, ["info", "--model", "models:/shd-airplane@champion"])
try:
    shd.load_model("models:/shd-airplane@champion", "cpu")
    api_error = None
except ImportError as exc:
    api_error = str(exc)
print(json.dumps({
    "shape": list(weights.shape), "ok": [m.ok for m in meshes], "parts": shd.part_names(model),
    "saved": saved.stat().st_size, "scores": {k: scores[k] for k in ("mmd", "cov", "1-nna")},
    "cli": [cli.exit_code, cli.output], "info": [info.exit_code, info.output], "api_error": api_error,
    "loaded": sorted({m.split(".")[0] for m in sys.modules} & BLOCKED),
}))
"""


def test_light_install_samples_meshes_scores_and_serves_the_cli(tmp_path, monkeypatch):
    folder = export_tiny_model(tmp_path / "model")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    done = subprocess.run(
        [sys.executable, "-c", LIGHT, str(folder), str(tmp_path), ",".join(PIPELINE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"][0] == 4 and all(result["ok"]) and result["parts"] == ["body", "wing"]
    assert result["saved"] > 0 and all(isinstance(v, float) for v in result["scores"].values())
    assert result["cli"][0] == 0 and "wrote 2 obj meshes" in result["cli"][1], result["cli"]
    assert result["info"][0] == 2 and "pip install 'shd[pipeline]'" in result["info"][1], result["info"]
    assert "pip install 'shd[pipeline]'" in result["api_error"]
    assert result["loaded"] == []


def test_import_shd_is_light_and_lists_the_api():
    code = (
        "import sys, shd; names = sorted(shd.__all__); fns = [callable(getattr(shd, n)) for n in names];"
        "print(names, all(fns), sorted({m.split('.')[0] for m in sys.modules} & {'torch', *sys.argv[1:]}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *PIPELINE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "['load_model', 'mesh', 'metrics', 'part_names', 'save_mesh'] True []"


def test_pipeline_libraries_are_an_extra_that_setup_installs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split("==")[0].split(">=")[0].replace("-", "_") for d in project["dependencies"]}
    assert names.isdisjoint(PIPELINE)
    extra = {d.split("==")[0].replace("-", "_") for d in project["optional-dependencies"]["pipeline"]}
    assert extra == set(PIPELINE)
    assert "shd[pipeline]" in project["optional-dependencies"]["dev"]
    assert "'.[pipeline,dev]'" in (ROOT / "Makefile").read_text()
    assert project["requires-python"] == ">=3.11,<3.13"
