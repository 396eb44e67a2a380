"""The evaluation stage's options (params.yaml `evaluate`), where it writes, and its file formats."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from shd import paths
from shd.errors import InputError
from shd.eval.chamfer import BACKENDS
from shd.eval.meshing import REFERENCE_LEVEL
from shd.eval.metrics import NNA_RESAMPLES
from shd.eval.pointclouds import N_POINTS, NORMALIZATIONS

SAMPLES_FORMAT = "shd-eval-samples/1"
GENERATED_FORMAT = "shd-eval-generated/1"
GENERATED_KEY = "params"  # the (N, D) tensor of data/eval/generated.safetensors
RECONSTRUCTION = "test_reconstruction"


@dataclass(frozen=True)
class EvaluateConfig:
    """params.yaml section `evaluate`. Defaults finish on a 2-core CPU; the protocol of record is
    resolution 356 (REFERENCE.md), which wants a GPU."""

    resolution: int = 64
    level: float = REFERENCE_LEVEL  # logit(0.8)
    n_points: int = N_POINTS
    normalization: str = "unit_std"
    generate_factor: float = 1.1
    batch_size: int = 8  # shapes meshed at once (their grids are held on the device)
    chunk_points: int = 2**15  # grid points per shape in one field call (bounds activations)
    device: str = "auto"
    backend: str = "auto"  # Chamfer backend: auto | triton | kdtree | torch
    seed: int = 0
    nna_resamples: int = NNA_RESAMPLES  # bootstrap resamples of the 1-NNA 95% interval (0: none)
    render_count: int = 16
    render_resolution: int = 64  # renders of 356^3 meshes take minutes: re-mesh the shown ones coarser
    category: str | None = None  # None: the weight set's first category
    baseline_weights: str | None = None  # weight set of the single-MLP baseline, or None

    def __post_init__(self) -> None:
        checks = [
            (self.resolution >= 2 and self.render_resolution >= 2, "resolution", "must be >= 2"),
            (self.n_points >= 1, "n_points", "must be >= 1"),
            (self.normalization in NORMALIZATIONS, "normalization", f"one of {NORMALIZATIONS}"),
            (self.generate_factor >= 1, "generate_factor", "must be >= 1"),
            (self.batch_size >= 1 and self.chunk_points >= 1, "batch_size", "sizes must be >= 1"),
            (self.render_count >= 0, "render_count", "must be >= 0"),
            (self.nna_resamples >= 0, "nna_resamples", "must be >= 0"),
            (self.backend in BACKENDS, "backend", f"one of {BACKENDS}"),
            (
                self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"),
                "device",
                "auto, cpu, cuda or cuda:<index>",
            ),
        ]
        for ok, key, problem in checks:
            if not ok:
                raise InputError(f"evaluate.{key}", f"{problem}, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class EvalPaths:
    """Where the stage writes; the metrics file is written last. `generated` (the weights evaluated) and
    `samples` (each one's mesh status and nearest reference / training shape, each reference's nearest
    generated CD) are kept so that the report shows what was scored without sampling again."""

    metrics: Path = paths.EVAL_JSON  # the stage writes its headline numbers to paths.EVAL_METRICS
    nn_cd: Path = paths.EVAL_NN_CD
    grid: Path = paths.EVAL_GRID
    generated: Path = paths.EVAL_DIR / "generated.safetensors"
    samples: Path = paths.EVAL_DIR / "samples.json"

    @classmethod
    def under(cls, root: str | Path) -> EvalPaths:
        return cls(**{f.name: Path(root) / f.default for f in fields(cls)})

    @classmethod
    def beside(cls, metrics: str | Path) -> EvalPaths:
        """Every file next to the metrics JSON `X.json` (`X.nn_cd.csv`, `X.png`, `X.generated.safetensors`,
        `X.samples.json`): a command told `--out X.json` writes nothing anywhere else."""
        metrics = Path(metrics)
        return cls(
            metrics,
            metrics.with_suffix(".nn_cd.csv"),
            metrics.with_suffix(".png"),
            metrics.with_suffix(".generated.safetensors"),
            metrics.with_suffix(".samples.json"),
        )
