"""The `apps` section of params.yaml: defaults shared by the library functions and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from shd.errors import InputError
from shd.eval.export import FORMATS
from shd.eval.meshing import REFERENCE_LEVEL

INTERPOLATIONS = ("linear", "slerp")


@dataclass(frozen=True)
class AppsConfig:
    """Knobs of hybrid / interpolate / complete; the CLI's option defaults come from here."""

    harmonize: float = 0.2  # SDEdit strength s of hybrids (noise to t = s*T); 0 = stitched as is
    steps: int = 50  # DDIM steps of a full chain (sampling parents, harmonizing, inpainting)
    resample: int = 3  # RePaint resampling: each inpainting step taken this many times
    guidance: float = 1.0  # classifier-free guidance (conditional models)
    interp_steps: int = 8  # frames of an interpolation, both parents included
    resolution: int = 64  # marching-cubes grid of the written meshes and the CD figures
    level: float = REFERENCE_LEVEL
    n_points: int = 2048  # surface points per mesh for Chamfer distances
    mesh_format: str = "ply"  # ply | obj | glb
    gif_ms: int = 250  # frame duration of interpolation GIFs
    device: str = "auto"  # auto | cpu | cuda (meshing; the CLI loads the model there too)
    seed: int = 0
    # quality figures (shd.apps.quality): train-split pairs used, parts kept by the completion figure
    quality_pairs: int = 6
    quality_keep: tuple[str, ...] = ("body", "wing")

    def __post_init__(self) -> None:
        object.__setattr__(self, "quality_keep", tuple(self.quality_keep))
        checks = [
            (0.0 <= self.harmonize <= 1.0, "harmonize", "must be in [0, 1]"),
            (self.steps >= 1, "steps", "must be >= 1"),
            (self.resample >= 1, "resample", "must be >= 1"),
            (self.interp_steps >= 2, "interp_steps", "must be >= 2 (both parents are frames)"),
            (self.resolution >= 8, "resolution", "must be >= 8"),
            (self.n_points >= 1, "n_points", "must be >= 1"),
            (self.mesh_format in FORMATS, "mesh_format", f"one of {FORMATS}"),
            (self.gif_ms >= 1, "gif_ms", "must be >= 1"),
            (
                self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"),
                "device",
                "auto, cpu, cuda or cuda:<index>",
            ),
            (self.quality_pairs >= 1, "quality_pairs", "must be >= 1"),
        ]
        for ok, key, problem in checks:
            if not ok:
                raise InputError(f"apps.{key}", f"{problem}, got {getattr(self, key)!r}")


DEFAULTS = AppsConfig()
