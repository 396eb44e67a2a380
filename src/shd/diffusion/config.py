"""Diffusion configurations: the denoiser, the noise schedule and training (frozen dataclasses).

Plain dataclasses so they go into JSON (export), MLflow params and fingerprints unchanged. The
defaults are sized for a 2-core CPU; `NET_PRESETS["reference"]` is the published semantic model.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields
from typing import Any

from shd.errors import InputError

PREDICTIONS = ("x0", "eps", "v")
NORMALIZATIONS = ("none", "block", "scalar")
CONDITIONING = ("auto", "on", "off")
# torch.compile of the training loss (`shd.diffusion.compile` says what each does)
COMPILE_MODES = ("off", "default", "max-autotune-gemm", "max-autotune-no-cudagraphs")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
# lr after the warmup (`objective.lr_factor`): constant (the reference) | cosine | linear decay to 0
LR_SCHEDULES = ("constant", "cosine", "linear")


def _check(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise InputError(where, problem)


def _build(cls, values: dict[str, Any] | None, where: str):
    """`cls(**values)` with unknown keys named (params.yaml-style error) and switches (bool fields) refused
    unless true or false: a YAML string such as "no" would otherwise count as on."""
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    _check(not unknown, f"{where}.{','.join(unknown)}", f"unknown option(s); valid: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        _check(
            hints[key] is not bool or isinstance(value, bool),
            f"{where}.{key}",
            f"expected true or false, got {value!r}",
        )
    return cls(**values)


ATTENTION_KERNELS = ("auto", "flash", "efficient", "cudnn", "matmul", "triton")
RESIDUAL_DTYPES = ("float32", "autocast")
MLP_KERNELS = ("library", "triton")
# NetConfig fields that change how the same function is computed, not the tensors (a resume may switch them)
SPEED_OPTIONS = ("attention", "residual_dtype", "mlp_kernel")


@dataclass(frozen=True)
class NetConfig:
    """Pre-LN transformer over the tokens: `depth` blocks of `width` channels and `heads` heads."""

    depth: int = 2
    width: int = 64
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    # number of category classes (0: unconditional); the null class for guidance is index n_categories
    n_categories: int = 0
    # attention kernel: auto (PyTorch's SDPA picks) | flash | efficient | cudnn (SDPA forced to one
    # backend) | matmul (explicit softmax(QK^T)V, which torch.compile fuses; for short token sequences)
    # | triton (shd's fused kernels for sequences of <= 64 tokens, `short_attention`; on CUDA with
    # 16-bit activations and no attention dropout, otherwise SDPA)
    attention: str = "auto"
    # dtype of the residual stream between blocks: float32 (the reference) | autocast (the autocast
    # dtype, bf16 on a GPU: half the memory traffic of the layer norms and residual adds, which bound
    # the step at width 512; the norms still compute in float32). Without autocast (CPU) both are float32.
    residual_dtype: str = "float32"
    # bias + GELU of the MLP's hidden layer: library (the linear's bias in the GEMM, then GELU; compiled,
    # Inductor fuses them) | triton (shd's fused kernels, `fused_gelu`: the backward also sums the bias
    # gradient in the same pass; on CUDA, otherwise the library path). Same parameters either way.
    mlp_kernel: str = "library"

    def __post_init__(self) -> None:
        for name in ("depth", "width", "heads"):
            _check(getattr(self, name) >= 1, f"net.{name}", f"must be >= 1, got {getattr(self, name)}")
        _check(
            self.width % self.heads == 0, "net.width", f"{self.width} is not divisible by heads {self.heads}"
        )
        _check(0 <= self.dropout < 1, "net.dropout", f"must be in [0, 1), got {self.dropout}")
        _check(self.n_categories >= 0, "net.n_categories", f"must be >= 0, got {self.n_categories}")
        _check(
            self.attention in ATTENTION_KERNELS,
            "net.attention",
            f"{self.attention!r} is not one of {ATTENTION_KERNELS}",
        )
        _check(
            self.residual_dtype in RESIDUAL_DTYPES,
            "net.residual_dtype",
            f"{self.residual_dtype!r} is not one of {RESIDUAL_DTYPES}",
        )
        _check(
            self.mlp_kernel in MLP_KERNELS,
            "net.mlp_kernel",
            f"{self.mlp_kernel!r} is not one of {MLP_KERNELS}",
        )


NET_PRESETS: dict[str, NetConfig] = {
    "tiny": NetConfig(),
    "small": NetConfig(depth=4, width=128, heads=4),
    # REFERENCE.md semantic model: 12 layers, 16 heads, width 512
    "reference": NetConfig(depth=12, width=512, heads=16),
}


@dataclass(frozen=True)
class ScheduleConfig:
    """DDPM noise schedule (REFERENCE.md: 500 steps, linear betas 1e-4..2e-2) and the net's target."""

    timesteps: int = 500
    beta_start: float = 1e-4
    beta_end: float = 2e-2
    beta_schedule: str = "linear"
    prediction: str = "x0"

    def __post_init__(self) -> None:
        _check(self.timesteps >= 2, "schedule.timesteps", f"must be >= 2, got {self.timesteps}")
        _check(
            self.prediction in PREDICTIONS,
            "schedule.prediction",
            f"one of {PREDICTIONS}, got {self.prediction!r}",
        )
        _check(
            0 < self.beta_start < self.beta_end < 1,
            "schedule.beta_start",
            f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}",
        )


@dataclass(frozen=True)
class TrainConfig:
    """Optimization, data, validation and hardware options of one training run."""

    lr: float = 2e-4
    # optimizer steps of linear warmup from 0 to lr (0: none, the reference); large batches with a scaled lr
    # need one. Then lr_schedule over the run's optimizer steps (max_steps, else epochs x batches)
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    batch_size: int = 32
    accumulate: int = 1
    max_epochs: int = 200
    max_steps: int = -1  # -1: no step limit (epochs decide)
    # passes over the training split per epoch: small weight sets get fewer per-epoch costs
    # (validation, checkpoint, epoch logging); 1 = the usual epoch
    epoch_repeat: int = 1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # per-block standardization (BENCHMARKS.md, diffusion_cpu: the reference's "none" collapses at CPU
    # training lengths; block has the lowest weight-space error and keeps held-out shapes in range)
    normalization: str = "block"
    # "scalar": each scalar's std is floored at this fraction of its block's std (weights that barely
    # moved from the shared init are not magnified); 0 = plain per-scalar std
    norm_floor: float = 0.1
    conditioning: str = "auto"  # auto: on when the weight set has more than one category
    cond_drop: float = 0.1  # probability of the null category (classifier-free guidance)
    seed: int = 0
    val_check_every: int = 1  # epochs between validation losses
    # periodic generation check: sample, mesh at low resolution, MMD/COV/1-NNA vs the val split
    val_every: int = 50  # epochs between generation checks (0: never), a multiple of val_check_every
    val_samples: int = 8  # per category
    val_steps: int = 50  # DDIM steps
    val_resolution: int = 48
    val_guidance: float = 1.0
    val_normalization: str = "unit_std"
    log_every: int = 10  # steps between logged training losses
    checkpoint_every: int = 1  # epochs
    precision: str = "auto"  # auto: bf16-mixed on CUDA, 32-true on CPU
    # torch.compile of the training forward/backward (`shd.diffusion.compile`): off | default |
    # max-autotune-gemm | max-autotune-no-cudagraphs (YAML's bare off/on, read as booleans, mean off /
    # default); validation and sampling stay eager
    compile: str | bool = "off"
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    # splits kept on the training device, each batch one index_select there (no per-step host copy or
    # sync); false: a host DataLoader with num_workers workers (weight sets larger than device memory)
    data_on_device: bool = True
    num_workers: int = 0
    experiment: str = "diffusion"
    log_model: bool = True  # log the exported model folder as MLflow artifacts

    def __post_init__(self) -> None:
        for name in (
            "lr",
            "batch_size",
            "accumulate",
            "max_epochs",
            "val_samples",
            "val_steps",
            "log_every",
            "checkpoint_every",
            "val_check_every",
            "epoch_repeat",
        ):
            _check(getattr(self, name) > 0, f"train.{name}", f"must be > 0, got {getattr(self, name)}")
        _check(
            self.normalization in NORMALIZATIONS,
            "train.normalization",
            f"one of {NORMALIZATIONS}, got {self.normalization!r}",
        )
        _check(
            self.conditioning in CONDITIONING,
            "train.conditioning",
            f"one of {CONDITIONING}, got {self.conditioning!r}",
        )
        _check(
            self.precision in PRECISIONS, "train.precision", f"one of {PRECISIONS}, got {self.precision!r}"
        )
        if isinstance(self.compile, bool):
            object.__setattr__(self, "compile", "default" if self.compile else "off")
        _check(
            self.compile in COMPILE_MODES, "train.compile", f"one of {COMPILE_MODES}, got {self.compile!r}"
        )
        _check(0 <= self.cond_drop < 1, "train.cond_drop", f"must be in [0, 1), got {self.cond_drop}")
        _check(self.norm_floor >= 0, "train.norm_floor", f"must be >= 0, got {self.norm_floor}")
        _check(0 < self.ema_decay < 1, "train.ema_decay", f"must be in (0, 1), got {self.ema_decay}")
        _check(self.warmup_steps >= 0, "train.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _check(
            self.lr_schedule in LR_SCHEDULES,
            "train.lr_schedule",
            f"one of {LR_SCHEDULES}, got {self.lr_schedule!r}",
        )
        _check(
            self.val_every % self.val_check_every == 0,
            "train.val_every",
            f"must be a multiple of val_check_every ({self.val_check_every}), got {self.val_every}",
        )
        _check(self.val_resolution >= 8, "train.val_resolution", f"must be >= 8, got {self.val_resolution}")


@dataclass(frozen=True)
class DiffusionConfig:
    net: NetConfig = NetConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> DiffusionConfig:
        """From a params.yaml section `{net: preset name | {preset?, ...}, schedule: {...}, train: {...}}`."""
        values = dict(values or {})
        unknown = sorted(set(values) - {"net", "schedule", "train"})
        _check(
            not unknown, f"diffusion.{','.join(unknown)}", "unknown section(s); valid: net, schedule, train"
        )
        net = values.get("net", "tiny")
        if isinstance(net, str):
            _check(net in NET_PRESETS, "diffusion.net", f"preset one of {sorted(NET_PRESETS)}, got {net!r}")
            net_cfg = NET_PRESETS[net]
        else:
            net = dict(net)
            preset = net.pop("preset", "tiny")
            _check(preset in NET_PRESETS, "diffusion.net.preset", f"one of {sorted(NET_PRESETS)}")
            net_cfg = _build(NetConfig, {**asdict(NET_PRESETS[preset]), **net}, "diffusion.net")
        return cls(
            net_cfg,
            _build(ScheduleConfig, values.get("schedule"), "diffusion.schedule"),
            _build(TrainConfig, values.get("train"), "diffusion.train"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
