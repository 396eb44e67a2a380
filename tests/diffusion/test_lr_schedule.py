"""Learning-rate warmup and decay (train.warmup_steps, train.lr_schedule): the factor, and what Lightning's
optimizer sees step by step, across a resume with another base lr."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest

from shd.diffusion.config import DiffusionConfig
from shd.diffusion.objective import lr_factor
from shd.diffusion.train import train
from shd.errors import InputError

from .conftest import make_weight_set, random_weights


def test_warmup_rises_linearly_from_zero_then_each_schedule_decays_as_named():
    assert [lr_factor(s, "constant", 4, 100) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_factor(4, "cosine", 4, 104) == 1.0
    assert lr_factor(54, "cosine", 4, 104) == pytest.approx(0.5)
    assert lr_factor(104, "cosine", 4, 104) == pytest.approx(0.0)
    assert lr_factor(29, "linear", 4, 104) == pytest.approx(0.75)
    assert lr_factor(500, "linear", 4, 104) == 0.0  # past the end: stays at 0, never negative
    assert lr_factor(0, "constant", 0, 10) == 1.0  # no warmup: the reference's constant lr from step 0


def test_bad_schedule_options_name_the_key():
    with pytest.raises(InputError, match="train.lr_schedule"):
        DiffusionConfig.from_dict({"train": {"lr_schedule": "step"}})
    with pytest.raises(InputError, match="train.warmup_steps"):
        DiffusionConfig.from_dict({"train": {"warmup_steps": -1}})


class _RecordLr(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[tuple[int, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lrs.append((trainer.global_step, trainer.optimizers[0].param_groups[0]["lr"]))


def test_the_optimizer_follows_warmup_and_cosine_per_step_and_a_changed_schedule_trains_afresh(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = make_weight_set(
        tmp_path / "weights", random_weights(5, seed=3), ["train"] * 4 + ["val"], ["airplane"] * 5
    )
    train_cfg = {
        "batch_size": 2,
        "max_epochs": 3,
        "val_every": 0,
        "log_every": 50,
        "lr": 1e-3,
        "warmup_steps": 2,
        "lr_schedule": "cosine",
    }
    cfg = {"net": {"depth": 1, "width": 32, "heads": 2}, "train": train_cfg}
    first = _RecordLr()
    train(ws, cfg, tmp_path / "out", tracking_root=tmp_path / "mlruns", callbacks=[first])
    total = 6  # 3 epochs x 2 batches
    assert [s for s, _ in first.lrs] == list(range(total))
    for step, lr in first.lrs:
        assert lr == pytest.approx(1e-3 * lr_factor(step, "cosine", 2, total)), step
    assert first.lrs[0][1] == 0.0 and first.lrs[2][1] == pytest.approx(1e-3)

    # 2 more epochs with a halved lr: a changed lr (and a decaying schedule over a longer run) is another
    # training, so it starts afresh at step 0 over the new total (10 steps) from the new base lr
    again = _RecordLr()
    cfg["train"] = {**train_cfg, "max_epochs": 5, "lr": 5e-4}
    train(ws, cfg, tmp_path / "out", tracking_root=tmp_path / "mlruns", callbacks=[again])
    assert [s for s, _ in again.lrs] == list(range(10))
    for step, lr in again.lrs:
        assert lr == pytest.approx(5e-4 * lr_factor(step, "cosine", 2, 10)), step
