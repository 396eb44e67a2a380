"""The Python API for notebooks and scripts: load a model, sample, mesh, score, save.

    import shd
    model = shd.load_model("models/diffusion/model")        # or models:/shd-airplane@champion
    weights = model.sample(8, seed=0)                         # (8, D) weight vectors
    meshes = shd.mesh(model, weights, resolution=64)          # part-labelled meshes
    shd.save_mesh(meshes[0], "plane.glb", model)              # one coloured node per part
    shd.metrics(meshes[:4], meshes[4:])                       # MMD / COV / 1-NNA (Chamfer)

Everything here works with the light install (`pip install shd`); registry and run references need
the pipeline extra (MLflow). Heavy libraries are imported inside the functions, so `import shd` and
the CLI's start stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shd import paths

if TYPE_CHECKING:
    import numpy as np
    import torch

    from shd.diffusion.sampler import WeightSampler
    from shd.eval.meshing import MeshResult

# The one default model of the API and of every CLI command that samples: the folder the train stage
# exports. It needs no MLflow store (the light install has none); models:/shd-airplane@champion is the
# registry's pick.
DEFAULT_MODEL = str(paths.MODEL)
# Installed by `pip install 'shd[pipeline]'` (`make setup`), left out of the light install.
PIPELINE_MODULES = ("dvc", "mlflow", "great_expectations", "optuna", "optuna_integration")
PIPELINE_EXTRA = "pip install 'shd[pipeline]'"


def missing_extra(exc: ModuleNotFoundError) -> ImportError | None:
    """The clear error for a pipeline library the light install lacks (None for any other module)."""
    top = (exc.name or "").split(".")[0]
    if top not in PIPELINE_MODULES:
        return None
    return ImportError(f"{top} is not installed: this needs the pipeline extra ({PIPELINE_EXTRA})", name=top)


def load_model(ref: str | Path = DEFAULT_MODEL, device: str = "auto") -> WeightSampler:
    """The model a reference names (exported folder, .ckpt, models:/..., runs:/..., run id), on
    `device` (auto = CUDA when present). `model.sample(n, seed=..., steps=..., category=...)` draws
    (n, D) weight vectors; `model.categories` and `part_names(model)` say what it generates."""
    from shd.tracking.model_ref import load_sampler

    try:
        return load_sampler(str(ref), device)
    except ModuleNotFoundError as exc:
        error = missing_extra(exc)
        if error is None:
            raise
        raise error from None


def part_names(model: WeightSampler) -> list[str] | None:
    """Part names in expert order (None for a field without semantic parts)."""
    layout = model.layout
    names = [next((b.part for b in layout.blocks if b.expert == e), None) for e in range(layout.n_experts)]
    return names if all(names) else None


def mesh(
    model: WeightSampler, weights: torch.Tensor, resolution: int = 64, level: float | None = None
) -> list[MeshResult]:
    """One part-labelled mesh per weight vector (marching cubes of the field at `resolution`^3);
    `mesh.ok` says whether the field had a surface, `mesh.vertices/faces/face_labels` hold it."""
    from shd.eval.meshing import REFERENCE_LEVEL
    from shd.eval.reconstruct import mesh_weights

    flat = weights.unsqueeze(0) if weights.ndim == 1 else weights
    return mesh_weights(
        flat,
        model.layout,
        model.field,
        resolution=resolution,
        level=REFERENCE_LEVEL if level is None else level,
        device=model.device,
    )


def save_mesh(result: MeshResult, path: str | Path, model: WeightSampler | None = None) -> Path:
    """Write a mesh as .obj, .ply or .glb (by the suffix), one coloured part per expert."""
    from shd.eval.export import export_mesh

    return export_mesh(result, Path(path), part_names(model) if model is not None else None)


def metrics(
    generated: Sequence[MeshResult] | np.ndarray,
    reference: Sequence[MeshResult] | np.ndarray,
    *,
    normalization: str = "unit_std",
    n_points: int = 2048,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """MMD, COV and 1-NNA (Chamfer) of generated vs reference shapes, given as meshes (surface clouds
    of `n_points` are sampled) or as clouds (N, n, 3), as the evaluate stage computes them; keys
    `mmd`, `cov`, `1-nna` and the counts behind them."""
    from shd.eval.metrics import generation_metrics

    return generation_metrics(
        _clouds(generated, n_points, seed),
        _clouds(reference, n_points, seed + 1),
        normalization=normalization,
        device=device,
    )


def _clouds(shapes: Sequence[MeshResult] | np.ndarray, n_points: int, seed: int) -> np.ndarray:
    import numpy as np

    from shd.eval.meshing import MeshResult
    from shd.eval.pointclouds import sample_clouds

    if len(shapes) and isinstance(shapes[0], MeshResult):
        return sample_clouds(list(shapes), n_points, seed).points
    return np.asarray(shapes, dtype=np.float32)
