"""Optuna sweeps over the overfit (field) and diffusion hyperparameters, tracked in MLflow.

`run_sweep(kind)` runs or continues a study in RDB storage until it holds the requested number of
finished trials (any number of workers may share it); `apply_best` merges the best trial's params
into params.yaml.
"""

from shd.sweep.best import apply_best, best_path
from shd.sweep.config import KINDS
from shd.sweep.runner import run_sweep

__all__ = ["KINDS", "apply_best", "best_path", "run_sweep"]
