"""A fresh local SQLite MLflow store per test module (creating one costs seconds) and tiny exported
diffusion models: an untrained denoiser whose normalization pins every sample next to one known field
(a small octahedron), so sampling from the model gives real, non-empty meshes in milliseconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shd.diffusion.config import NetConfig, ScheduleConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.export import export_model
from shd.diffusion.normalization import Normalizer
from shd.diffusion.tokens import TokenLayout
from shd.fields.layout import flatten, make_layout
from tests.diffusion.conftest import TINY_FIELD

PARTS = ["body", "wing"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Points shd.tracking at a new SQLite store (and a new model cache) for the whole module."""
    root = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setattr("shd.mlflow_store.DEFAULT_DIR", root / "mlruns")
        mp.setenv("SHD_MODEL_CACHE", str(root / "cache"))
        torch.set_num_threads(1)
        yield root


def octahedron_weights(radius: float = 0.3) -> torch.Tensor:
    """(D,) weights of the tiny field whose expert 0 is inside |x|+|y|+|z| < ~radius (expert 1 never).

    Hidden units 0..5 are relu(+-x_i) of the raw coordinates (the encoding starts with x itself)."""
    n_in, n_hidden = 3 * (1 + 2 * TINY_FIELD.n_freqs), TINY_FIELD.hidden[0]
    w0, b0 = torch.zeros(1, 2, n_hidden, n_in), torch.zeros(1, 2, n_hidden)
    for i in range(3):
        w0[0, 0, 2 * i, i], w0[0, 0, 2 * i + 1, i] = 1.0, -1.0
    w1, b1 = torch.zeros(1, 2, 1, n_hidden), torch.tensor([[[10.0 * radius], [-10.0]]])
    w1[0, 0, 0, :6] = -10.0
    return flatten({"layer0.weight": w0, "layer0.bias": b0, "layer1.weight": w1, "layer1.bias": b1})[0]


def export_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A real exported model folder: a small random denoiser over the tiny field layout, normalized so
    that its samples stay within 1e-3 of `octahedron_weights` (different seeds, different files)."""
    torch.manual_seed(seed)
    layout = make_layout(TINY_FIELD, PARTS)
    net = Denoiser(NetConfig(depth=1, width=16, heads=2), TokenLayout(layout))
    normalizer = Normalizer(octahedron_weights(), torch.full((layout.dim,), 1e-4), "scalar")
    return export_model(
        folder, net, ScheduleConfig(timesteps=20), normalizer, TINY_FIELD, ["airplane"], f"data-{seed}"
    )


def eval_report(
    nna: float | None, mmd: float | None = 0.5, cov: float | None = 0.5, resolution: int = 64
) -> dict:
    """The fields of reports/eval.json that registration reads."""
    return {
        "generator": "diffusion",
        "category": "airplane",
        "normalization": "unit_std",
        "nna": nna,
        "mmd": mmd,
        "cov": cov,
        "n_generated": 5,
        "n_evaluated": 5,
        "n_empty": 0,
        "n_reference": 4,
        "yardsticks": {"train_as_generator": {"nna": 0.6, "mmd": 0.3, "cov": 0.7}},
        "protocol": {
            "resolution": resolution,
            "level": 1.386,
            "n_points": 2048,
            "generate_factor": 1.1,
            "seed": 0,
            "reference_split": "test",
            "reference_points": 2048,
        },
    }
