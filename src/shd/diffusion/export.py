"""The exported model folder: everything needed to sample, as safetensors + JSON (no pickle).

- `model.safetensors`: the (EMA) denoiser's state dict;
- `normalization.safetensors`: the (D,) mean and std of the training split;
- `config.json` (written last: its presence means the folder is complete): net and schedule configs,
  the weight-set layout blocks, the field config, category names, normalization mode and the
  fingerprint of the training data, plus anything the trainer adds (metrics, run id).
"""

from __future__ import annotations

import pickle  # only for its error type: checkpoints load with weights_only=True
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from shd.atomic import read_json_document, write_json, write_with
from shd.diffusion.config import NetConfig, ScheduleConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.normalization import Normalizer
from shd.diffusion.sampler import WeightSampler
from shd.diffusion.schedule import Schedule
from shd.diffusion.tokens import TokenLayout
from shd.errors import InputError
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout

FORMAT = "shd-diffusion/1"
CONFIG_FILE, WEIGHTS_FILE, NORM_FILE = "config.json", "model.safetensors", "normalization.safetensors"


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    cpu = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in tensors.items()}
    write_with(path, lambda tmp: save_file(cpu, str(tmp), metadata={"format": FORMAT}))


def export_model(
    folder: str | Path,
    net: Denoiser,
    schedule: ScheduleConfig,
    normalizer: Normalizer,
    field: FieldConfig,
    categories: list[str],
    data_fingerprint: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the model folder (atomically per file, config last); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # the old config goes first: new tensors beside it would otherwise claim its data fingerprint
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    _save_tensors(folder / WEIGHTS_FILE, net.state_dict())
    _save_tensors(folder / NORM_FILE, normalizer.tensors())
    layout = net.tokens.layout
    write_json(
        folder / CONFIG_FILE,
        {
            "format": FORMAT,
            "net": asdict(net.cfg),
            "schedule": asdict(schedule),
            "layout": {"dim": layout.dim, "n_experts": layout.n_experts, "blocks": layout.to_json()},
            "field": asdict(field),
            "categories": list(categories),
            "normalization": normalizer.mode,
            "data_fingerprint": data_fingerprint,
            **(extra or {}),
        },
    )
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    return read_json_document(
        Path(folder) / CONFIG_FILE, "not an exported diffusion model folder (or an unfinished export)", FORMAT
    )


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
    device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
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
    device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    return WeightSampler(net, schedule, normalizer, field, hp["categories"], device)
