"""Training progress: optimizer steps with an ETA through a real Lightning fit, one summary line."""

from __future__ import annotations

import io

import lightning.pytorch as pl
import torch
from rich.console import Console

from shd import progress
from shd.diffusion.progress import StepProgress


class _Line(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_fit_shows_steps_with_eta_then_one_summary_line():
    data = torch.utils.data.TensorDataset(torch.randn(40, 2), torch.randn(40, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=4)  # 10 steps an epoch
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[StepProgress()],
    )
    out = io.StringIO()
    with progress.shown_on(Console(file=out, force_terminal=False, width=200)):
        trainer.fit(_Line(), loader)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("train: 2/20 steps (10%)") and "ETA" in lines[0]
    assert lines[-1].startswith("train: 20 steps in ") and len(lines) == 11
