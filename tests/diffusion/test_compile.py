"""torch.compile of the training loss: modes, the Lightning module's compiled loss, eager equivalence."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from shd.diffusion.compile import compile_fn
from shd.diffusion.config import NetConfig, ScheduleConfig, TrainConfig
from shd.diffusion.module import DiffusionModule
from shd.diffusion.objective import noised_loss
from shd.diffusion.train import train
from shd.errors import InputError
from shd.fields.layout import make_layout

from .conftest import TINY_FIELD, make_weight_set, random_weights

NET = NetConfig(depth=1, width=32, heads=2)


def _module(compile_mode: str) -> DiffusionModule:
    torch.manual_seed(0)
    return DiffusionModule(
        asdict(NET),
        asdict(ScheduleConfig()),
        asdict(TrainConfig(compile=compile_mode)),
        make_layout(TINY_FIELD).to_json(),
        asdict(TINY_FIELD),
        ["airplane"],
    )


def test_off_is_the_function_itself_and_unknown_modes_are_refused():
    assert compile_fn(noised_loss, "off") is noised_loss
    with pytest.raises(ValueError, match="fastest"):
        compile_fn(noised_loss, "fastest")
    with pytest.raises(InputError, match="train.compile"):
        TrainConfig(compile="fastest")


def test_the_module_trains_through_the_compiled_loss_and_checkpoints_the_eager_net():
    eager, compiled = _module("off"), _module("default")
    assert eager._train_loss is noised_loss and compiled._train_loss is not noised_loss
    assert list(compiled.state_dict()) == list(eager.state_dict())


@pytest.mark.slow
def test_compiled_training_gives_the_eager_losses(tmp_path):
    """Same seed, same batches and draws: the compiled run's losses equal the eager run's (float32 CPU;
    Inductor reorders sums, so to a tolerance). ~1 minute of CPU compilation."""
    splits = ["train"] * 4 + ["val", "test"]
    ws = make_weight_set(tmp_path / "weights", random_weights(6), splits, ["airplane"] * 6)
    losses = {}
    for mode in ("off", "default"):
        cfg = {
            "net": asdict(NET),
            "train": {
                "batch_size": 2,
                "max_epochs": 2,
                "val_every": 0,
                "log_every": 1,
                "compile": mode,
                "checkpoint_every": 2,
            },
        }
        summary = train(ws, cfg, tmp_path / mode, tracking_root=tmp_path / "mlruns")
        losses[mode] = (summary["train_loss"], summary["val_loss"])
    assert losses["default"] == pytest.approx(losses["off"], rel=1e-4)


def test_yaml_booleans_name_the_off_and_default_modes():
    assert TrainConfig(compile=False).compile == "off" and TrainConfig(compile=True).compile == "default"
