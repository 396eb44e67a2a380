"""SemanticHyperDiffusion: part-aware diffusion in the weight space of occupancy MLPs.

The notebook API (`shd.api`), loaded on first use so that `import shd` stays light:

    model = shd.load_model("models/diffusion/model")
    meshes = shd.mesh(model, model.sample(4, seed=0))
    shd.save_mesh(meshes[0], "plane.glb", model)
    shd.metrics(generated_meshes, reference_meshes)
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_model", "mesh", "metrics", "part_names", "save_mesh"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from shd import api

        return getattr(api, name)
    raise AttributeError(f"module 'shd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
