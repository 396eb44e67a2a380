"""The file MLflow logs as the model's code ("models from code"): it names the PythonModel, so the
logged model holds no pickle. Loaded by MLflow only; importing it elsewhere just sets the model."""

import mlflow.models

from shd.tracking.pyfunc import DiffusionPyfunc

mlflow.models.set_model(DiffusionPyfunc())
