"""The exported model folder: everything needed to sample, as safetensors + JSON (no pickle).

- `model.safetensors`: the (EMA) denoiser's state dict;
- `normalization.safetensors`: the (D,) mean and std of the training split;
- `config.json` (written last: its presence means the folder is complete): net and schedule configs,
  the weight-set layout blocks, the field config, category names, normalization mode and the
  fingerprint of the training data, plus anything the trainer adds (metrics, run id).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from shd.atomic import read_json_document, write_json, write_with
from shd.diffusion.config import ScheduleConfig
from shd.diffusion.denoiser import Denoiser
from shd.diffusion.normalization import Normalizer
from shd.fields.config import FieldConfig

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
