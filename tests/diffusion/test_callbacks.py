"""The per-step callbacks read the device only at intervals: divergence check and throughput clock."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from shd.diffusion.callbacks import FiniteLoss, Throughput, TrainingDiverged


def fake_trainer() -> SimpleNamespace:
    strategy = SimpleNamespace(
        reduce_boolean_decision=lambda decision, all=True: decision, root_device=torch.device("cpu")
    )
    return SimpleNamespace(global_step=0, current_epoch=0, world_size=1, strategy=strategy)


def test_a_non_finite_loss_stops_at_the_next_check_naming_the_first_bad_step(tmp_path):
    trainer, check = fake_trainer(), FiniteLoss(tmp_path / "checkpoints", every=4)
    for loss in (1.0, float("nan"), 2.0):  # fewer batches than the interval: not read yet
        trainer.global_step += 1
        check.on_train_batch_end(trainer, None, torch.tensor(loss), None, 0)
    trainer.global_step += 1
    with pytest.raises(TrainingDiverged, match=r"non-finite loss nan at step 2 .*no checkpoint written yet"):
        check.on_train_batch_end(trainer, None, {"loss": torch.tensor(float("inf"))}, None, 0)


def test_finite_losses_pass_every_check(tmp_path):
    trainer, check = fake_trainer(), FiniteLoss(tmp_path, every=1)
    for loss in (3.0, 2.0):
        trainer.global_step += 1
        check.on_train_batch_end(trainer, None, torch.tensor(loss), None, 0)
    check.on_validation_start(trainer, None)
    check.on_train_epoch_end(trainer, None)


def test_the_epoch_end_check_catches_a_bad_loss_before_the_interval(tmp_path):
    trainer, check = fake_trainer(), FiniteLoss(tmp_path, every=100)
    check.on_train_batch_end(trainer, None, torch.tensor(float("inf")), None, 0)
    with pytest.raises(TrainingDiverged, match="inf at step 0"):
        check.on_train_epoch_end(trainer, None)


def test_throughput_counts_training_batches_and_stops_its_clock_for_validation():
    trainer, clock = fake_trainer(), Throughput()
    batch = (torch.zeros(4, 3), torch.zeros(4))
    for _ in range(3):
        clock.on_train_batch_start(trainer, None, batch, 0)
        clock.on_train_batch_end(trainer, None, None, batch, 0)
    clock.on_validation_start(trainer, None)
    seconds = clock.seconds
    assert clock.samples == 12 and seconds > 0
    clock.on_validation_start(trainer, None)  # clock already stopped: nothing added
    assert clock.seconds == seconds
    clock.on_train_batch_start(trainer, None, batch, 0)
    clock.on_train_batch_end(trainer, None, None, batch, 0)
    clock.on_train_epoch_end(trainer, None)
    assert clock.samples == 16 and clock.seconds > seconds and clock.samples_per_s > 0
