"""Untrusted files: no pickle is ever executed. A real malicious pickle (its __reduce__ would create a
marker file) put where the project reads checkpoints, models, shards or shapes is refused with an
InputError naming the file, and the marker never appears. A scan of the code keeps it that way, and
servers the project starts bind 127.0.0.1."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from shd.data.sample_store import SampleSet
from shd.data.shape import PreparedShape
from shd.diffusion.api import load_model
from shd.diffusion.train import train
from shd.errors import InputError
from shd.fields.weight_set import WeightSet
from shd.shards import read_shard
from tests.diffusion.conftest import make_weight_set, random_weights

REPO = Path(__file__).resolve().parents[2]
CODE = [p for d in ("src", "pipelines", "benchmarks") for p in sorted((REPO / d).rglob("*.py"))]


class Payload:
    """Unpickling this calls open(marker, "w"): the file appears iff the pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def malicious(path: Path, marker: Path, zip_format: bool) -> Path:
    """A pickle carrying code: torch's zip checkpoint format, or a raw pickle stream."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if zip_format:
        torch.save({"state_dict": {}, "payload": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(path))).close()  # the payload works when unpickled...
    assert path.exists()
    path.unlink()  # ...so its absence below proves nothing unpickled it
    return path


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch_zip", "raw_pickle"])
def test_a_malicious_resume_checkpoint_is_refused(tmp_path, marker, monkeypatch, zip_format):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    torch.set_num_threads(1)
    ws = make_weight_set(tmp_path / "weights", random_weights(5), ["train"] * 4 + ["val"], ["airplane"] * 5)
    last = malicious(tmp_path / "out" / "checkpoints" / "last.ckpt", marker, zip_format)
    cfg = {"net": {"depth": 1, "width": 32, "heads": 2}, "train": {"max_epochs": 1, "val_every": 0}}
    with pytest.raises(InputError, match=r"last\.ckpt: refused as a resume checkpoint") as exc:
        train(ws, cfg, tmp_path / "out", tracking_root=tmp_path / "mlruns")
    assert "weights_only" in str(exc.value)
    assert not marker.exists() and last.exists()


def test_a_pickle_in_place_of_model_or_shard_files_is_refused(tmp_path, marker, tiny_project):
    """Exported model, weight shard, sample shard, prepared shape: each read refuses, naming the file."""
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "normalization.safetensors"):
        (model / name).write_bytes((tiny_project / "models/diffusion/model" / name).read_bytes())
    malicious(model / "model.safetensors", marker, zip_format=True)
    with pytest.raises(InputError, match=r"model: cannot load the model weights"):
        load_model(model, "cpu")
    shard = malicious(tmp_path / "shard-00000.safetensors", marker, zip_format=False)
    with pytest.raises(InputError, match=r"shard-00000\.safetensors: not a readable shd safetensors shard"):
        read_shard(shard)
    npz = tmp_path / "shape.npz"
    np.savez(npz, header_json=np.array([Payload(marker)], dtype=object))  # an object array = a pickle
    with pytest.raises(InputError, match=r"shape\.npz: not a readable prepared-shape npz"):
        PreparedShape.load(npz)
    assert not marker.exists()
    for opener, folder in ((WeightSet.open, "data/weights"), (SampleSet.open, "data/samples")):
        copy = tmp_path / folder
        copy.mkdir(parents=True)
        (copy / "manifest.json").write_bytes((tiny_project / folder / "manifest.json").read_bytes())
        loaded = opener(copy)
        first = loaded.manifest["shapes"][0]
        malicious(copy / first["shard"], marker, zip_format=True)
        read = loaded.load_flat if folder == "data/weights" else loaded.load
        with pytest.raises(InputError, match=re.escape(first["shard"])):
            read([first["shape_id"]])
    assert not marker.exists()


# ------------------------------------------------------------------------------------- code scan


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(node: ast.AST) -> str:
    return ast.unparse(node)


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return None


PICKLERS = ("pickle", "dill", "cloudpickle", "joblib")
LOADERS = ("load", "loads", "Unpickler")


def _arg(call: ast.Call, name: str) -> ast.AST | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def pickle_hazards(path: Path) -> list[str]:
    """Every place in a file that could unpickle data: pickle-family loaders (called, or imported by
    name; importing the module for its error type is not one), torch.load without weights_only=True,
    np.load without allow_pickle=False, checkpoint loads without weights_only=True, MLflow flavours
    that pickle models (a pyfunc logged "from code", python_model given as a file path, pickles none)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLERS:
            bad = [a.name for a in node.names if a.name in LOADERS]
            found += [f"{path.name}:{node.lineno}: imports {node.module}.{n}" for n in bad]
    for call in _calls(tree):
        name = _name(call.func)
        where = f"{path.name}:{call.lineno}: {name}"
        if name.split(".")[0] in PICKLERS and name.split(".")[-1] in LOADERS:
            found.append(f"{where}: unpickles")
        if name.endswith("torch.load") and _kw(call, "weights_only") is not True:
            found.append(f"{where} without weights_only=True")
        if name.endswith("np.load") and _kw(call, "allow_pickle") is not False:
            found.append(f"{where} without allow_pickle=False")
        if (_kw(call, "ckpt_path") is not None or name.endswith("load_from_checkpoint")) and _kw(
            call, "weights_only"
        ) is not True:
            found.append(f"{where} loads a checkpoint without weights_only=True")
        model = _arg(call, "python_model")  # a file path ("path" or str(path)): logged from code
        from_code = isinstance(model, ast.Constant) or (
            isinstance(model, ast.Call) and _name(model.func) == "str"
        )
        if re.search(r"mlflow\.(pytorch|pyfunc|sklearn)\.(load_model|log_model|save_model)", name) and not (
            name.endswith(("pyfunc.log_model", "pyfunc.save_model")) and from_code
        ):
            found.append(f"{where}: a pickling MLflow flavour")
    return found


def test_the_scan_finds_each_hazard(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nfrom pickle import loads\nimport torch, numpy as np\ntorch.load('a')\n"
        "np.load('b', allow_pickle=True)\ntrainer.fit(m, ckpt_path='c')\n"
        "mlflow.pytorch.load_model('d')\npickle.load(fh)\n"
        "mlflow.pyfunc.log_model(name='m', python_model=Model())\n"
        "torch.load('e', weights_only=True)\nnp.load('f', allow_pickle=False)\n"
        "mlflow.pyfunc.log_model(name='m', python_model=str(code))\ne = pickle.UnpicklingError\n"
    )
    assert len(pickle_hazards(bad)) == 7


def test_no_code_path_unpickles_data():
    found = [h for path in CODE for h in pickle_hazards(path)]
    assert not found, "\n".join(found)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def test_servers_bind_loopback_by_default():
    """No 0.0.0.0 anywhere; every --host / host= / server_name= given a literal names the loopback."""
    texts = {
        p: p.read_text(encoding="utf-8")
        for p in CODE
        + [REPO / "Makefile", REPO / "README.md"]
        + sorted((REPO / "pipelines").glob("*.yaml"))
        + [REPO / "dvc.yaml"]
        if p.exists()
    }
    problems = [f"{p.name}: binds 0.0.0.0" for p, t in texts.items() if "0.0.0.0" in t]
    for p, text in texts.items():
        hosts = re.findall(r"--host[= ]+([^\s`'\";]+)", text)
        problems += [f"{p.name}: --host {h}" for h in hosts if h not in LOOPBACK]
    for path in CODE:
        for call in _calls(ast.parse(texts[path])):
            for key in ("host", "server_name"):
                value = _kw(call, key)
                if isinstance(value, str) and value != "<expr>" and value not in LOOPBACK:
                    problems.append(f"{path.name}:{call.lineno}: {key}={value!r}")
    assert not problems, problems
