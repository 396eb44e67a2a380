"""Numerical faults from real inputs: NaN/Inf while fitting fields (the shape fails alone, with its
reason), a diverging diffusion training (a clear stop, the last good checkpoint kept), and sampled
weight vectors with NaN/Inf/huge values (empty shapes in the metrics, never a crash)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from shd.diffusion.callbacks import TrainingDiverged
from shd.diffusion.train import train
from shd.errors import InputError
from shd.eval.evaluate import EvalPaths, EvaluateConfig, evaluate_stage
from shd.fields.fit import fit_sample_set
from shd.fields.weight_set import WeightSet
from shd.shards import read_shard, write_shard
from tests.diffusion.conftest import make_weight_set, random_weights
from tests.fields.conftest import make_sample_set, tiny_config
from tests.tiny_project import run_stage

NET = {"depth": 1, "width": 32, "heads": 2}
EVAL = EvaluateConfig(resolution=24, n_points=128, render_count=2, render_resolution=16, device="cpu")


@pytest.fixture(autouse=True)
def _threads(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def corrupt_points(sample_dir: Path, row: int, value: float, shard: str = "shard-00000.safetensors") -> str:
    """Overwrite the first training points of one shape with `value`; returns its shape id."""
    tensors, meta = read_shard(sample_dir / shard)
    tensors["points"][row, :9] = value
    write_shard(sample_dir / shard, tensors, meta)
    return meta["shape_ids"][row]


@pytest.mark.parametrize("value", [np.inf, -np.inf], ids=["inf_points", "minus_inf_points"])
def test_a_non_finite_shape_fails_alone_with_its_reason(tmp_path, value):
    """(NaN points: tests/fields/test_fit.py::test_a_nan_shape_fails_alone.)"""
    samples = make_sample_set(tmp_path / "samples", n_shapes=4)
    bad = corrupt_points(samples, 1, value)
    summary = fit_sample_set(samples, tmp_path / "w", tiny_config())
    ws = WeightSet.open(tmp_path / "w")
    assert ws.ids(status="failed") == [bad] and summary["n_failed"] == 1 and len(ws.ids()) == 3
    assert "non-finite training loss" in ws.record(bad)["reason"] and ws.record(bad)["iou"] is None
    assert torch.isfinite(ws.load_flat(ws.ids())).all()


def test_a_diverging_learning_rate_fails_every_shape_cleanly(tmp_path):
    """lr 1e30: every fit goes non-finite; each is marked failed, the set is still written, and the next
    stage says there is nothing to train on. With first_shape init the stage says no init fit."""
    samples = make_sample_set(tmp_path / "samples", n_shapes=4)
    summary = fit_sample_set(samples, tmp_path / "w", tiny_config(lr=1e30, init="seed"))
    ws = WeightSet.open(tmp_path / "w")
    assert summary["n_failed"] == 4 and ws.ids() == []
    assert all("non-finite" in ws.record(s)["reason"] for s in ws.ids(status=None))
    with pytest.raises(InputError, match="no good fits"):
        train(tmp_path / "w", {"net": NET}, tmp_path / "out", tracking_root=tmp_path / "mlruns")
    with pytest.raises(InputError, match="overfit.init: first_shape: no fit succeeded"):
        fit_sample_set(samples, tmp_path / "w2", tiny_config(lr=1e30, init="first_shape"))


@pytest.mark.slow
def test_overfit_stage_with_a_nan_shape_finishes(project_copy):
    root = project_copy(("data/samples",))
    bad = corrupt_points(root / "data/samples", 0, np.nan)
    done = run_stage(root, "overfit")
    assert done.returncode == 0, done.stderr
    ws = WeightSet.open(root / "data/weights")
    assert ws.ids(status="failed") == [bad] and len(ws.ids(status=None)) > 1
    assert json.loads((root / "reports/overfit.json").read_text())["n_failed"] == 1


class DivergeAt(pl.Callback):
    """The weights turn NaN at the start of epoch `epoch`, so the loss does too: a divergence in the middle
    of a training whose params did not change (a changed lr would train afresh, not resume)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for param in pl_module.net.parameters():
                    param.fill_(float("nan"))


def test_diverging_diffusion_training_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    ws = make_weight_set(tmp_path / "weights", random_weights(6), ["train"] * 5 + ["val"], ["airplane"] * 6)
    out, store = tmp_path / "out", tmp_path / "mlruns"
    good = {"net": NET, "train": {"max_epochs": 1, "checkpoint_every": 1, "val_every": 0, "batch_size": 2}}
    first = train(ws, good, out, tracking_root=store)
    last = out / "checkpoints" / "last.ckpt"
    kept = last.read_bytes()
    metrics = tmp_path / "train.json"
    longer = {"net": NET, "train": {**good["train"], "max_epochs": 3}}
    with pytest.raises(TrainingDiverged, match=r"non-finite loss .* at step \d+ .*last\.ckpt is kept"):
        train(ws, longer, out, tracking_root=store, metrics_path=metrics, callbacks=[DivergeAt(1)])
    assert last.read_bytes() == kept and not metrics.exists()
    state = torch.load(last, weights_only=True, map_location="cpu")["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    again = train(ws, {**good, "train": {**good["train"], "max_epochs": 2}}, out, tracking_root=store)
    assert again["resumed"] and again["run_id"] == first["run_id"]  # the kept checkpoint resumes
    assert again["global_step"] == 2 * first["global_step"]


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e30], ids=["nan", "inf", "huge"])
def test_bad_sampled_weights_are_empty_shapes_in_the_metrics(tiny_project, tmp_path, value):
    weights = WeightSet.open(tiny_project / "data/weights")
    flat = weights.load_flat(weights.ids(split="train"))[:3].clone()
    flat[0] = value  # one whole vector bad, one with a single bad scalar, one fine
    flat[1, 5] = value
    report = evaluate_stage(
        tiny_project / "data/weights",
        tiny_project / "data/samples",
        EvalPaths.under(tmp_path),
        EVAL,
        generated=flat,
        generator_name="faulty",
    )
    assert report["n_generated"] == 3 and report["n_empty"] >= 1
    assert report["n_evaluated"] + report["n_empty"] + report.get("clipped_generated", 0) >= 3 - 1
    written = json.loads((tmp_path / "reports/eval.json").read_text())  # strict JSON: no NaN tokens
    assert written["n_empty"] == report["n_empty"]
    every = evaluate_stage(
        tiny_project / "data/weights",
        tiny_project / "data/samples",
        EvalPaths.under(tmp_path / "all"),
        replace(EVAL, render_count=0),
        generated=torch.full_like(flat, value),
    )
    assert every["n_empty"] == 3 and every["n_evaluated"] == 0 and every["mmd"] is None
