"""End-to-end training through Lightning + MLflow on tiny weight sets (one SQLite store per module)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch

from shd.diffusion.api import load_model, sample_generated
from shd.diffusion.callbacks import RUN_FILE
from shd.diffusion.export import export_model, read_config
from shd.diffusion.train import train

from .conftest import make_weight_set, random_weights

NET = {"depth": 2, "width": 64, "heads": 4}
QUIET = {"val_every": 0, "log_every": 50}
# 800 steps over 4 vectors
MEMORIZE = {
    **QUIET,
    "batch_size": 4,
    "max_epochs": 16,
    "epoch_repeat": 50,
    "lr": 1e-3,
    "ema_decay": 0.95,
    "checkpoint_every": 16,
    "val_check_every": 16,
    "normalization": "none",
}


def assert_reproduces(samples: torch.Tensor, train_flat: torch.Tensor) -> None:
    """Samples land on the training vectors: 7 of 8 within a quarter of their smallest spacing, and every
    one nearer to one vector than half that spacing. (Measured over seeds 0-6 at 800 steps: 7 of 8
    within 0.15 every time, the eighth up to 0.42; at 400 steps the worst were 0.5.)"""
    nearest = torch.cdist(samples, train_flat).min(1)
    ratio = nearest.values / torch.pdist(train_flat).min()
    assert (ratio < 0.25).sum() >= len(samples) - 1 and (ratio < 0.5).all(), ratio
    assert len(set(nearest.indices.tolist())) >= 3  # several of the vectors, not one mode


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store for the module (a fresh SQLite store costs seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield tmp_path_factory.mktemp("mlruns")


@pytest.fixture(scope="module")
def memorized(tmp_path_factory, store):
    """4 training vectors (plus a bad fit that must be left out), trained for 800 steps."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("memorize")
    flat = random_weights(7)
    ws = make_weight_set(root / "weights", flat, ["train"] * 5 + ["val", "test"], ["airplane"] * 7, bad=(4,))
    cfg = {"net": NET, "train": MEMORIZE}
    summary = train(ws, cfg, root / "out", tracking_root=store, metrics_path=root / "metrics" / "train.json")
    return summary, flat[:4], root


def test_the_model_memorizes_four_weight_vectors(memorized):
    summary, train_flat, root = memorized
    assert summary["n_train"] == 4 and summary["n_val"] == 1  # the bad fit is excluded
    assert summary["global_step"] == 800 and summary["epochs"] == 16
    # x0 MSE: from the data variance (0.25) to well below; what remains is the irreducible part at
    # high t, where 178 scalars do not tell the 4 vectors apart
    assert summary["train_loss"] < 0.1
    assert_reproduces(load_model(summary["model_dir"], "cpu").sample(8, steps=50, seed=0), train_flat)
    written = json.loads((root / "metrics" / "train.json").read_text())
    assert written["global_step"] == 800 and written["samples_per_s"] > 0


def test_a_bf16_residual_stream_trains_as_well_under_bf16_autocast(memorized, store, tmp_path):
    """net.residual_dtype=autocast with bf16-mixed precision (on the CPU here): the same memorization run
    reaches the float32 run's loss (measured: 0.0532 vs 0.0539) and its samples still find the vectors."""
    summary, train_flat, root = memorized
    cfg = {"net": {**NET, "residual_dtype": "autocast"}, "train": {**MEMORIZE, "precision": "bf16-mixed"}}
    low = train(root / "weights", cfg, tmp_path / "out", tracking_root=store)
    assert low["train_loss"] < max(0.1, 1.2 * summary["train_loss"])
    assert_reproduces(load_model(low["model_dir"], "cpu").sample(8, steps=50, seed=0), train_flat)


def test_export_load_round_trip_gives_identical_samples(memorized, tmp_path):
    summary, _, _ = memorized
    first = load_model(summary["model_dir"], "cpu")
    again = export_model(
        tmp_path / "copy",
        first.net,
        first.schedule.cfg,
        first.normalizer,
        first.field,
        first.categories,
        "fp",
    )
    second = load_model(again, "cpu")
    a = first.sample(3, steps=10, seed=7)
    assert torch.equal(a, second.sample(3, steps=10, seed=7))
    assert torch.equal(a, load_model(summary["model_dir"], "cpu").sample(3, steps=10, seed=7))
    assert not torch.equal(a, first.sample(3, steps=10, seed=8))
    # the evaluation stage's entry takes the training output folder too
    out_dir = Path(summary["model_dir"]).parent
    got = sample_generated(out_dir, 3, category="airplane", seed=7, device="cpu", steps=10)
    assert torch.equal(got, a)
    files = sorted(p.name for p in (tmp_path / "copy").iterdir())
    assert files == ["config.json", "model.safetensors", "normalization.safetensors"]  # no pickle


def test_checkpoints_load_with_weights_only(memorized):
    _, _, root = memorized
    ckpt = torch.load(root / "out" / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    state = ckpt["state_dict"]
    assert "normalizer.mean" in state and any(k.startswith("ema.module.") for k in state)
    assert ckpt["global_step"] == 800


def test_resume_continues_the_run_and_global_step_with_categories(tmp_path, store):
    flat = random_weights(10, seed=1)
    splits = ["train"] * 3 + ["val"] + ["train"] * 3 + ["val"] + ["test"] * 2
    cats = ["airplane"] * 4 + ["chair"] * 4 + ["airplane", "chair"]
    ws = make_weight_set(tmp_path / "weights", flat, splits, cats)
    cfg = {
        "net": NET,
        "train": {
            "batch_size": 2,
            "max_epochs": 1,
            "log_every": 1,
            "val_every": 2,
            "val_samples": 2,
            "val_steps": 3,
            "val_resolution": 16,
            "normalization": "block",
        },
    }
    first = train(ws, cfg, tmp_path / "out", tracking_root=store)
    assert first["conditional"] and first["categories"] == "airplane,chair"
    assert first["global_step"] == 3  # 6 training shapes, batches of 2
    run_file = json.loads((tmp_path / "out" / "checkpoints" / RUN_FILE).read_text())
    assert run_file["run_id"] == first["run_id"]

    cfg["train"]["max_epochs"] = 2
    second = train(ws, cfg, tmp_path / "out", tracking_root=store)
    assert second["resumed"] and second["run_id"] == first["run_id"]
    assert second["global_step"] == 6 and second["epochs"] == 2
    client = mlflow.MlflowClient(mlflow.get_tracking_uri())
    steps = sorted(m.step for m in client.get_metric_history(first["run_id"], "train/loss_step"))
    assert steps[0] < 3 <= steps[-1]  # one run holds the steps of both processes
    # the generation check ran at epoch 2 for each category, through meshing and the metrics
    assert set(second["val_generation"]) == {"airplane", "chair"}
    assert sorted((tmp_path / "out" / "renders").glob("*.png"))
    sampler = load_model(second["model_dir"], "cpu")
    assert sampler.conditional and sampler.normalizer.mode == "block"
    assert sampler.sample(2, steps=2, category="chair", guidance=2.0).shape == (2, flat.shape[1])


def test_the_same_seed_trains_the_same_weights_and_another_seed_does_not(tmp_path, store):
    """Data orders (device batches), noise and initialization all follow train.seed."""
    ws = make_weight_set(
        tmp_path / "weights", random_weights(6, seed=2), ["train"] * 5 + ["val"], ["airplane"] * 6
    )
    cfg = {"net": NET, "train": {**QUIET, "batch_size": 2, "max_epochs": 2, "epoch_repeat": 2}}

    def weights(name: str, seed: int) -> dict[str, torch.Tensor]:
        seeded = {**cfg, "train": {**cfg["train"], "seed": seed}}
        run = train(ws, seeded, tmp_path / name, tracking_root=store)
        return load_model(run["model_dir"], "cpu").net.state_dict()

    first, again, other = weights("a", 0), weights("b", 0), weights("c", 1)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_ema_warms_up_and_then_averages():
    """A 0.999 EMA follows the weights within its first updates (warmup), then decays by
    min(0.999, (1 + n) / (10 + n)) an update, the count surviving in its n_averaged buffer."""
    from shd.diffusion.objective import ema_of

    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    ema = ema_of(net, 0.999)
    ema.update_parameters(net)  # the first update copies
    with torch.no_grad():
        net.weight.fill_(1.0)
    for _ in range(50):
        ema.update_parameters(net)
    assert ema.module.weight.item() > 0.99  # a plain 0.999 EMA would be at 1 - 0.999**50 = 0.05
    for n_before in (int(ema.n_averaged), 20_000):
        ema.n_averaged.fill_(n_before)
        prev = ema.module.weight.item()
        with torch.no_grad():
            net.weight.fill_(0.0)
        ema.update_parameters(net)
        assert ema.module.weight.item() == pytest.approx(prev * min(0.999, (1 + n_before) / (10 + n_before)))


def test_a_changed_net_trains_afresh_and_keeps_the_old_checkpoints_aside(store, tmp_path):
    """`dvc repro` after editing the net in params.yaml: the old checkpoints cannot be resumed, so they
    are moved aside (not deleted) and training starts from step 0."""
    ws = make_weight_set(tmp_path / "weights", random_weights(5), ["train"] * 4 + ["val"], ["airplane"] * 5)
    base = {"train": {**QUIET, "batch_size": 4, "max_epochs": 1, "checkpoint_every": 1, "val_check_every": 1}}
    first = train(
        ws, {**base, "net": {"depth": 1, "width": 32, "heads": 2}}, tmp_path / "out", tracking_root=store
    )
    second = train(
        ws, {**base, "net": {"depth": 1, "width": 64, "heads": 2}}, tmp_path / "out", tracking_root=store
    )
    assert not second["resumed"] and second["global_step"] == first["global_step"]
    aside = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("checkpoints-")]
    assert len(aside) == 1 and (aside[0] / "last.ckpt").exists()
    assert (tmp_path / "out" / "checkpoints" / "last.ckpt").exists()


def test_switching_speed_options_resumes_the_run(store, tmp_path):
    """The attention kernel, the residual dtype and the MLP kernel change how the net computes, not its
    tensors: a rerun with them switched resumes from the checkpoint instead of training afresh (here the
    fused MLP kernels run in Triton's interpreter where there is no GPU)."""
    ws = make_weight_set(tmp_path / "weights", random_weights(5), ["train"] * 4 + ["val"], ["airplane"] * 5)
    net = {"depth": 1, "width": 32, "heads": 2}
    train_cfg = {**QUIET, "batch_size": 4, "checkpoint_every": 1, "val_check_every": 1}
    first = train(
        ws, {"net": net, "train": {**train_cfg, "max_epochs": 1}}, tmp_path / "out", tracking_root=store
    )
    faster = {**net, "attention": "matmul", "residual_dtype": "autocast", "mlp_kernel": "triton"}
    second = train(
        ws, {"net": faster, "train": {**train_cfg, "max_epochs": 2}}, tmp_path / "out", tracking_root=store
    )
    assert second["resumed"] and second["run_id"] == first["run_id"]
    assert second["global_step"] == 2 * first["global_step"]


SHORT = {**QUIET, "batch_size": 4, "max_epochs": 1, "checkpoint_every": 1, "val_check_every": 1}
SMALL_NET = {"depth": 1, "width": 32, "heads": 2}


def _short_run(ws: Path, out: Path, store: Path, **train_options) -> dict:
    return train(ws, {"net": SMALL_NET, "train": {**SHORT, **train_options}}, out, tracking_root=store)


def _trained_fingerprint(ws: Path) -> str:
    """The data fingerprint of a weight set as the trainer loads it (independently of any export)."""
    from shd.diffusion.datamodule import data_fingerprint, load_split
    from shd.fields.weight_set import WeightSet

    weights = WeightSet.open(ws)
    return data_fingerprint(weights, load_split(weights, "train"), load_split(weights, "val"))


def test_changed_data_trains_afresh_and_the_export_names_the_new_data(store, tmp_path):
    """`dvc exp run -S overfit...` refits the weights: training must not resume the old checkpoints
    (which had reached max_epochs, so nothing would train) and export their weights as the new data's.
    The refit here even keeps the shards' config fingerprint: only the weights themselves differ."""
    splits, cats = ["train"] * 4 + ["val"], ["airplane"] * 5
    ws = make_weight_set(tmp_path / "weights", random_weights(5, seed=3), splits, cats)
    first = _short_run(ws, tmp_path / "out", store)
    old_net = load_model(first["model_dir"], "cpu").net.state_dict()
    make_weight_set(tmp_path / "weights", random_weights(5, seed=4), splits, cats)  # the refit

    second = _short_run(ws, tmp_path / "out", store)
    assert not second["resumed"] and second["global_step"] == first["global_step"] > 0
    assert second["train_loss"] is not None  # it trained
    new_net = load_model(second["model_dir"], "cpu").net.state_dict()
    assert not all(torch.equal(old_net[k], new_net[k]) for k in old_net)
    assert second["data_fingerprint"] == _trained_fingerprint(ws) != first["data_fingerprint"]
    exported = read_config(second["model_dir"])
    assert exported["data_fingerprint"] == _trained_fingerprint(ws)
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("checkpoints-")]


@pytest.mark.parametrize(
    "change", [{"lr": 1e-3}, {"seed": 1}, {"batch_size": 2}, {"ema_decay": 0.9}, {"normalization": "scalar"}]
)
def test_a_changed_training_param_trains_afresh(store, tmp_path, change):
    """Optimizer, seed, batch, EMA or normalization changed: the old trajectory is not continued (its
    checkpoints are moved aside), even with max_epochs raised at the same time."""
    ws = make_weight_set(tmp_path / "weights", random_weights(5), ["train"] * 4 + ["val"], ["airplane"] * 5)
    first = _short_run(ws, tmp_path / "out", store)
    second = _short_run(ws, tmp_path / "out", store, max_epochs=2, **change)
    assert not second["resumed"] and second["run_id"] != first["run_id"]
    batches = -(-4 // change.get("batch_size", 4))
    assert second["global_step"] == 2 * batches and second["epochs"] == 2
    aside = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("checkpoints-")]
    assert len(aside) == 1 and (aside[0] / "last.ckpt").exists()


def test_raised_max_epochs_resumes_and_trains_the_extra_epochs(store, tmp_path):
    """The same data and settings with more epochs: continuing is right, and the extra epochs train."""
    ws = make_weight_set(tmp_path / "weights", random_weights(5), ["train"] * 4 + ["val"], ["airplane"] * 5)
    first = _short_run(ws, tmp_path / "out", store)
    second = _short_run(ws, tmp_path / "out", store, max_epochs=3)
    assert second["resumed"] and second["run_id"] == first["run_id"]
    assert second["global_step"] == 3 * first["global_step"] and second["epochs"] == 3
    assert second["train_loss"] is not None
    assert read_config(second["model_dir"])["data_fingerprint"] == _trained_fingerprint(ws)
    # fewer epochs than the checkpoint already has: continuing would export an overtrained model
    third = _short_run(ws, tmp_path / "out", store, max_epochs=2)
    assert not third["resumed"] and third["global_step"] == 2 * first["global_step"]


def test_a_longer_run_under_a_decaying_lr_trains_afresh(store, tmp_path):
    """With a cosine lr schedule the length sets every step's lr: a raised max_epochs is another
    trajectory, so it does not continue the shorter run's checkpoints."""
    ws = make_weight_set(tmp_path / "weights", random_weights(5), ["train"] * 4 + ["val"], ["airplane"] * 5)
    first = _short_run(ws, tmp_path / "out", store, lr_schedule="cosine")
    second = _short_run(ws, tmp_path / "out", store, lr_schedule="cosine", max_epochs=2)
    assert not second["resumed"] and second["global_step"] == 2 * first["global_step"]
