"""Loading a trained model as a sampler: the exported folder (`export.py` writes it), a training
checkpoint, and `sample_generated`, the one call the evaluate stage needs.

Kept apart from `export.py` (the writer) and `sampler.py` (the sampling math) so that neither imports
the other: the loaders need both.
"""

from __future__ import annotations

import pickle  # only for its error type: checkpoints load with weights_only=True
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from shd.devices import resolve_device
from shd.diffusion.config import NetConfig, ScheduleConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.export import NORM_FILE, WEIGHTS_FILE, read_config
from shd.diffusion.normalization import Normalizer
from shd.diffusion.sampler import WeightSampler
from shd.diffusion.schedule import Schedule
from shd.diffusion.tokens import TokenLayout
from shd.errors import InputError
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout


def load_model(folder: str | Path, device: torch.device | str | None = None) -> WeightSampler:
    """The exported model as a sampler: `load_model(f).sample(n, steps, category, seed, guidance)`."""
    folder = Path(folder)
    config = read_config(folder)
    net_cfg = NetConfig(**config["net"])
    field = FieldConfig(**config["field"])
    net = Denoiser(net_cfg, TokenLayout(Layout.from_json(config["layout"]["blocks"])))
    try:
        net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        stats = load_file(str(folder / NORM_FILE))
    except (OSError, RuntimeError, SafetensorError) as exc:  # missing/damaged file, shape mismatch
        raise InputError(folder, f"cannot load the model weights ({exc})") from None
    normalizer = Normalizer(stats["mean"], stats["std"], config["normalization"])
    device = device if device is not None else resolve_device("auto", "device")
    return WeightSampler(
        net, Schedule(ScheduleConfig(**config["schedule"])), normalizer, field, config["categories"], device
    )


def load_checkpoint(path: str | Path, device: torch.device | str | None = None) -> WeightSampler:
    """A Lightning training checkpoint (`last.ckpt`) as a sampler of its EMA denoiser.

    Loaded with `weights_only=True`: the module's hyperparameters are plain dicts and lists, so a
    checkpoint from an untrusted place cannot run code.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        hp, state = ckpt["hyper_parameters"], ckpt["state_dict"]
        net = Denoiser(NetConfig(**hp["net"]), TokenLayout(Layout.from_json(hp["layout_blocks"])))
        prefix = "ema.module."
        net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        normalizer = Normalizer(state["normalizer.mean"], state["normalizer.std"], hp["normalization"])
        schedule, field = Schedule(ScheduleConfig(**hp["schedule"])), FieldConfig(**hp["field"])
    except (OSError, RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(
            path, f"not a loadable shd training checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    device = device if device is not None else resolve_device("auto", "device")
    return WeightSampler(net, schedule, normalizer, field, hp["categories"], device)


def sample_generated(
    folder: str | Path,
    n: int,
    *,
    category: str | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    steps: int = 50,
    guidance: float = 1.0,
    layout: Layout | None = None,
) -> torch.Tensor:
    """`n` weight vectors (n, D) from the model that the train stage exported under `folder`.

    `folder` is the train stage's output (`models/diffusion`, holding `model/`) or the model folder
    itself; the evaluate stage calls this, so evaluation never imports diffusion internals. With
    `layout` (the weight set's), a model trained on another layout is an InputError, not vectors that
    merely happen to have the right length.
    """
    folder = Path(folder)
    model_dir = folder / "model" if (folder / "model").is_dir() else folder
    sampler = load_model(model_dir, device=device)
    if layout is not None and sampler.layout.to_json() != layout.to_json():
        raise InputError(
            model_dir,
            f"trained on another weight layout (dim {sampler.layout.dim}, "
            f"{len(sampler.layout.blocks)} blocks) than the weight set's (dim {layout.dim}, "
            f"{len(layout.blocks)} blocks); retrain it on this weight set (dvc repro train)",
        )
    cat = category if sampler.conditional else None
    return sampler.sample(n, steps=steps, category=cat, seed=seed, guidance=guidance)
