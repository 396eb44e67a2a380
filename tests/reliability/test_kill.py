"""Kill tests: SIGKILL a stage at a seeded random point, rerun it, check that nothing finished was lost.

- overfit: finished weight shards are kept (untouched) and the rerun ends with the weights of an
  uninterrupted run with the same seed (the session's tiny project is that run);
- train: the rerun resumes from the last checkpoint, in the same MLflow run;
- evaluate: reports/eval.json is all-or-nothing (the old complete file or the new one);
- `dvc repro` after a kill finishes cleanly and leaves the pipeline up to date.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from shd.atomic import _temp_prefix, write_json
from shd.diffusion.callbacks import RUN_FILE
from shd.fields.weight_set import WeightSet
from tests.reliability.killing import Outcome, kill_command, kill_stage, leftover_temporaries
from tests.tiny_project import run_stage

SHARD_LINE = r"overfit: \d+/\d+ shapes"
OVERFIT = {"shard_size": 2, "max_batch": 2}  # shards finish one after another (max_batch: no weight change)
TRAIN = {"train": {"max_epochs": 6, "checkpoint_every": 1, "val_every": 0, "epoch_repeat": 4, "log_every": 1}}


def weights_of(root: Path) -> dict[str, torch.Tensor]:
    ws = WeightSet.open(root)
    ids = ws.ids(status=None)
    return dict(zip(ids, ws.load_flat(ids), strict=True))


def assert_same_weights(got: Path, want: Path) -> None:
    a, b = weights_of(got), weights_of(want)
    assert a.keys() == b.keys()
    for s in a:
        assert torch.allclose(a[s], b[s], rtol=1e-5, atol=1e-6, equal_nan=True), s
    ra, rb = WeightSet.open(got).records, WeightSet.open(want).records
    assert {s: r["status"] for s, r in ra.items()} == {s: r["status"] for s, r in rb.items()}


def shard_times(weights: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in weights.glob("shard-*.safetensors")}


def rerun_ok(root: Path, stage: str) -> subprocess.CompletedProcess:
    done = run_stage(root, stage)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def record(record_property, out: Outcome) -> None:
    """Where the kill landed, for the reliability table (benchmarks/reliability_table.py)."""
    record_property("killed", out.killed)
    record_property("kill_at_s", round(out.end_s, 2))


def check_overfit_after_kill(root: Path, reference: Path, out: Outcome) -> None:
    """Kept shards survive untouched; the rerun refits only the rest and matches the reference."""
    weights = root / "data/weights"
    kept = shard_times(weights)
    rerun_ok(root, "overfit")
    assert {k: v for k, v in shard_times(weights).items() if k in kept} == kept  # finished shards kept
    metrics = json.loads((root / "reports/overfit.json").read_text())
    assert metrics["reused_shards"] >= len(kept)
    assert_same_weights(weights, reference)
    assert not leftover_temporaries(weights) and not leftover_temporaries(root / "metrics")


def test_a_rewrite_clears_what_a_killed_writer_left(tmp_path):
    """An atomic write killed before its rename leaves a temporary; the next write of that file (the
    rerun) removes it, while a live writer's temporary is left alone."""
    target = tmp_path / "shard-00001.safetensors"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        orphan = tmp_path / f"{_temp_prefix(target, dead)}abc123.tmp"
        busy = tmp_path / f"{_temp_prefix(target, live.pid)}def456.tmp"
        other = tmp_path / f"{_temp_prefix(tmp_path / 'manifest.json', dead)}ghi789.tmp"
        for p in (orphan, busy, other):
            p.write_bytes(b"half a shard")
        write_json(target, {"ok": True})
        assert not orphan.exists() and busy.exists() and other.exists()
    finally:
        live.kill()
        live.wait()


def test_overfit_killed_after_its_first_shard(project_copy, tiny_project, record_property):
    """Fast case: the kill lands right after the first weight shard is written (seed 0, no delay)."""
    root = project_copy(("data/samples",), overfit=OVERFIT)
    out = kill_stage(root, "overfit", seed=0, trigger_line=SHARD_LINE)
    record(record_property, out)
    assert out.killed, out.output
    assert shard_times(root / "data/weights") and not (root / "data/weights/manifest.json").exists()
    check_overfit_after_kill(root, tiny_project / "data/weights", out)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_overfit_killed_at_a_random_point(project_copy, tiny_project, seed, record_property):
    """Kill at a seeded point within the stage's measured duration (imports, fitting or MLflow logging)."""
    probe = project_copy(("data/samples",), name="probe", overfit=OVERFIT)
    duration = kill_stage(probe, "overfit", seed=seed, kill=False).end_s
    root = project_copy(("data/samples",), overfit=OVERFIT)
    out = kill_stage(root, "overfit", seed=seed, delay=(0.0, duration))
    record(record_property, out)
    check_overfit_after_kill(root, tiny_project / "data/weights", out)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_resumes_from_its_last_checkpoint_in_the_same_run(project_copy, seed, record_property):
    root = project_copy(("data/samples", "data/weights"), diffusion=TRAIN)
    ckpt = root / "models/diffusion/checkpoints"
    out = kill_stage(root, "train", seed=seed, trigger_file=ckpt / "last.ckpt", delay=(0.0, 2.0))
    record(record_property, out)
    assert out.killed, out.output
    run_id = json.loads((ckpt / RUN_FILE).read_text())["run_id"]
    step = torch.load(ckpt / "last.ckpt", weights_only=True, map_location="cpu")["global_step"]
    assert step > 0
    rerun_ok(root, "train")
    summary = json.loads((root / "reports/train.json").read_text())
    assert summary["resumed"] and summary["run_id"] == run_id and summary["epochs"] == 6
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlruns/mlflow.db'}")
    steps = {m.step for m in client.get_metric_history(run_id, "train/loss_step")}
    assert min(steps) < step <= max(steps)  # one run holds the steps logged before and after the kill


def _eval_json_states(root: Path) -> object:
    path = root / "reports/eval.json"
    return json.loads(path.read_text()) if path.exists() else None  # raises on a half-written file


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluate_is_all_or_nothing(project_copy, seed, record_property):
    keep = ("data/samples", "data/weights", "models/diffusion", "reports/eval.json")
    root = project_copy(keep, evaluate={"seed": seed + 1})
    before = _eval_json_states(root)
    probe = project_copy(keep[:3], name="probe", evaluate={"seed": seed + 1})
    duration = kill_stage(probe, "evaluate", seed=seed, kill=False).end_s
    out = kill_stage(root, "evaluate", seed=seed, delay=(0.0, duration))
    record(record_property, out)
    after = _eval_json_states(root)
    assert after == before or (after is not None and after["protocol"]["seed"] == seed + 1), out.output
    rerun_ok(root, "evaluate")
    assert _eval_json_states(root)["protocol"]["seed"] == seed + 1
    assert not leftover_temporaries(root / "metrics")


def dvc(root: Path, *args: str, **kwargs) -> Outcome | subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(Path(sys.executable).parent / "dvc"), *args]
    if kwargs:
        return kill_command(cmd, root, env=env, **kwargs)
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_dvc_repro_after_kills_finishes_cleanly(project_copy, record_property):
    """`dvc repro` killed in overfit, then in train, then in evaluate; each time the next repro ends
    cleanly and finally `dvc status` reports the pipeline up to date."""
    root = project_copy((), overfit=OVERFIT, diffusion=TRAIN)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    assert dvc(root, "init", "-q").returncode == 0
    triggers = [
        ("overfit", {"trigger_line": SHARD_LINE}),
        ("train", {"trigger_file": root / "models/diffusion/checkpoints/last.ckpt"}),
        ("evaluate", {"trigger_line": r"Running stage 'evaluate'"}),
    ]
    for seed, (stage, trigger) in enumerate(triggers):
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["overfit"]["seed"] = seed  # every round reruns overfit and what depends on it
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        out = dvc(root, "repro", seed=seed, delay=(0.0, 1.0), **trigger)
        assert out.killed, (stage, out.output[-3000:])
        record_property(f"killed_in_{stage}", out.killed)
        done = dvc(root, "repro")
        assert done.returncode == 0, (stage, done.stdout[-3000:], done.stderr[-3000:])
    status = dvc(root, "status")
    assert status.returncode == 0 and "up to date" in status.stdout.lower(), status.stdout
    assert json.loads((root / "reports/eval.json").read_text())["n_generated"] >= 1
