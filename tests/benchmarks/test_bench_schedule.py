"""benchmarks/bench_schedule.py on CPU with a tiny net and weight set: every schedule trains for its budget
of training seconds, is scored along the way, follows its lr schedule, and the results make a section and a
plot."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch

from shd.diffusion.config import DiffusionConfig
from shd.diffusion.normalization import Normalizer
from shd.diffusion.objective import lr_factor
from shd.diffusion.tokens import TokenLayout
from shd.fields.layout import make_layout

from ..diffusion.conftest import TINY_FIELD, make_weight_set, random_weights

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import bench_schedule as bs  # noqa: E402

PLANS = [
    {"name": "b4 constant", "batch": 4, "lr": 1e-3},
    {
        "name": "b8 warmup cosine",
        "batch": 8,
        "lr": 2e-3,
        "warmup": 5,
        "lr_schedule": "cosine",
        "ema_decay": 0.99,
    },
]


def _args(tmp_path: Path, weights: Path, **over) -> argparse.Namespace:
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps(PLANS))
    values = dict(
        weights=str(weights),
        samples=None,
        params=str(Path(__file__).parents[2] / "params.yaml"),
        net="tiny",
        device="cpu",
        mode="graph",  # falls back to eager off CUDA
        plans=str(plans),
        budget_s=1.2,
        eval_every=0.4,
        max_steps=0,
        calibration_steps=3,
        val_samples=3,
        val_steps=2,
        resolution=12,
        seed=0,
        commit="abc1234",
        out_dir=str(tmp_path / "out"),
    )
    values.update(over)
    return argparse.Namespace(**values)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    flat = random_weights(14, seed=4)
    return make_weight_set(tmp_path / "weights", flat, ["train"] * 10 + ["val"] * 4, ["airplane"] * 14)


def test_each_schedule_trains_its_budget_scored_along_the_way_and_makes_a_section(tmp_path, weights):
    results = bs.run(_args(tmp_path, weights))
    saved = json.loads((tmp_path / "out" / "schedule_cpu.json").read_text())
    assert [p["name"] for p in saved["plans"]] == [p["name"] for p in PLANS]
    for plan, row in zip(PLANS, results["plans"], strict=True):
        assert row["mode"] == "eager" and row["steps"] > 0
        curve = row["curve"]
        assert len(curve) >= 2, curve  # scored every 0.4 s of training and at the end
        seconds = [p["train_s"] for p in curve]
        assert (
            seconds == sorted(seconds) and seconds[-1] >= 1.2 - 1e-9 or row["steps"] == row["planned_steps"]
        )
        assert seconds[-1] < 1.2 + 1.0  # the clock stops at the budget (plus one chunk of steps at most)
        assert all({"mmd", "cov", "1-nna", "loss"} <= set(p) for p in curve)
        for p in curve:  # the lr at each point is the plan's schedule at that step
            factor = lr_factor(
                p["step"], plan.get("lr_schedule", "constant"), plan.get("warmup", 0), row["planned_steps"]
            )
            assert p["lr"] == pytest.approx(plan["lr"] * factor)
    assert results["summary"]["winner"] in {p["name"] for p in PLANS} | {None}
    text = bs.section(results, "schedule_cpu.png")
    assert "b8 warmup cosine" in text and "commit abc1234" in text and "| schedule | train s |" in text
    png = bs.plot(results, tmp_path / "out" / "schedule_cpu.png")
    assert png.stat().st_size > 1000


def test_reset_returns_weights_ema_and_optimizer_to_the_seeded_start(tmp_path, weights):
    cfg = DiffusionConfig.from_dict({"net": "tiny"})
    layout = make_layout(TINY_FIELD)
    flat = random_weights(10, seed=4)
    plan = bs.Plan("p", 4, 1e-2)
    new_trainer = lambda: bs.Trainer(  # noqa: E731 - built twice from the same seed
        cfg,
        TokenLayout(layout),
        Normalizer.fit(flat, layout, "block"),
        flat,
        plan,
        torch.device("cpu"),
        "eager",
    )
    trainer = new_trainer()
    start = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    trainer.warm_up()
    for _ in range(3):
        trainer.step()
    assert not all(torch.equal(start[k], v) for k, v in trainer.net.state_dict().items())
    trainer.reset()
    assert all(torch.equal(start[k], v) for k, v in trainer.net.state_dict().items())
    assert int(trainer.ema.n_averaged) == 0
    assert all(
        float(v.abs().sum()) == 0
        for s in trainer.opt.state.values()
        for v in s.values()
        if torch.is_tensor(v)
    )
    # and the same seed trains the same way again from there
    trainer.step()
    again = new_trainer()
    assert all(torch.equal(start[k], v) for k, v in again.net.state_dict().items())


def test_default_plans_scale_the_reference_lr():
    names = {p.name: p for p in bs.DEFAULT_PLANS}
    assert names["reference b32"].lr == 2e-4 and names["reference b32"].warmup == 0
    assert names["b2048 sqrt"].lr == pytest.approx(1.6e-3)
    assert names["b1024 linear"].lr == pytest.approx(6.4e-3)
    with pytest.raises(ValueError, match="lr_schedule"):
        bs.Plan("x", 8, 1e-3, lr_schedule="step")
