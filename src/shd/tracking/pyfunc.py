"""The diffusion model as an MLflow pyfunc: `mlflow.pyfunc.load_model(uri).predict({...})`.

Logged "from code" (`pyfunc_code.py` names the model), so MLflow pickles nothing: the artifacts are
the exported model folder (safetensors + JSON) and the model card (JSON), and `load_context` builds
the sampler from them with `load_model`. A request is a dict or a one-row DataFrame:

    {"n": 4, "seed": 0, "steps": 50, "category": "airplane", "guidance": 1.0,
     "meshes": true, "resolution": 64}

and the answer is {"weights": (n, D) float32 array} plus, with `meshes`, a list of n meshes
({"vertices", "faces", "face_labels", "status"}) in [-0.5, 0.5]^3.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import json
import os
import re
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from shd.tracking.sampling import SampleRequest, generate, mesh_dict

MODEL_ARTIFACT, CARD_ARTIFACT = "model", "card"
# what the served model needs; torch gets a floor, not the logging machine's build (see pip_requirements)
REQUIREMENTS = ("mlflow", "torch", "safetensors", "numpy", "scikit-image", "trimesh", "diffusers")
_MLFLOW_TYPES = {"int": "long", "float": "double", "bool": "boolean", "str | None": "string"}
DEVICE_ENV = "SHD_DEVICE"  # auto | cpu | cuda: where a loaded pyfunc samples


class DiffusionPyfunc(mlflow.pyfunc.PythonModel):
    """Loads the exported model folder from the pyfunc's artifacts; samples weights (and meshes)."""

    # MLflow derives (and enforces) an input schema from predict's type hints and warns when it cannot;
    # the request is a free-form dict or one-row DataFrame that SampleRequest.parse checks instead, so
    # predict carries no annotations and MLflow's wrapping is skipped.
    _skip_type_hint_validation = True

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from shd.devices import resolve_device
        from shd.diffusion.api import load_model

        self.card = json.loads(Path(context.artifacts[CARD_ARTIFACT]).read_text(encoding="utf-8"))
        device = resolve_device(os.environ.get(DEVICE_ENV, "auto"), DEVICE_ENV)
        self.sampler = load_model(context.artifacts[MODEL_ARTIFACT], device=device)

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 (see above)
        """Sample weights (and meshes with `meshes: true`) as the request asks: dict -> dict."""
        request = SampleRequest.parse(model_input, self.card.get("sampling"))
        weights, meshes = generate(self.sampler, request)
        out: dict[str, Any] = {"weights": weights.numpy()}
        if request.meshes:
            out["meshes"] = [mesh_dict(m) for m in meshes]
        return out


def pip_requirements() -> list[str]:
    """What to install to serve the model: the versions that logged it, except torch, which gets
    `torch>=<major>.<minor>` of that version without its local build tag (`2.13.0+cpu` would make a
    CUDA machine install the CPU wheel, or fail). No inference: that would load and run the model."""
    out = []
    for pkg in REQUIREMENTS:
        try:
            version = md.version(pkg)
        except md.PackageNotFoundError:
            continue
        if pkg == "torch":
            major_minor = re.match(r"\d+\.\d+", version)
            out.append(f"torch>={major_minor.group(0) if major_minor else version.split('+')[0]}")
        else:
            out.append(f"{pkg}=={version}")
    return out


def signature() -> mlflow.models.ModelSignature:
    """The request's keys as an input schema (all optional: the card's sampling defaults fill the
    rest), so serving tools and the model's page show what `predict` takes."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    columns = [
        ColSpec(_MLFLOW_TYPES[str(f.type)], f.name, required=False) for f in dataclasses.fields(SampleRequest)
    ]
    return ModelSignature(inputs=Schema(columns))
