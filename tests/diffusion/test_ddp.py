"""`strategy=ddp` with 2 CPU processes (gloo): Lightning relaunches the script, so it runs as one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from shd.diffusion.api import load_model

from .conftest import make_weight_set, random_weights

SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from shd.diffusion.module import DiffusionModule
    from shd.diffusion.train import train

    start = DiffusionModule.on_train_start

    def traced(self):  # each rank's first draw of its training noise stream
        start(self)
        print(f"DRAW {self.global_rank} {torch.randn(4).tolist()}", flush=True)

    DiffusionModule.on_train_start = traced

    weights, out, store = sys.argv[1:4]
    cfg = {"net": {"depth": 1, "width": 32, "heads": 2},
           "train": {"batch_size": 2, "max_epochs": 2, "accelerator": "cpu", "devices": 2, "strategy": "ddp",
                     "val_every": 2, "val_samples": 2, "val_steps": 2, "val_resolution": 16, "log_every": 1}}
    summary = train(weights, cfg, out, tracking_root=store)
    if summary:
        print("SUMMARY " + json.dumps(summary))
""")


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    flat = random_weights(10)
    ws = make_weight_set(tmp_path / "weights", flat, ["train"] * 8 + ["val", "test"], ["airplane"] * 10)
    script = tmp_path / "run_ddp.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    args = [sys.executable, str(script), str(ws), str(tmp_path / "out"), str(tmp_path / "mlruns")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SUMMARY ")]
    assert len(lines) == 1  # rank zero only
    draws = dict(ln.split(" ", 2)[1:] for ln in proc.stdout.splitlines() if ln.startswith("DRAW "))
    assert set(draws) == {"0", "1"} and draws["0"] != draws["1"]  # each rank its own noise
    summary = json.loads(lines[0][len("SUMMARY ") :])
    # 8 shapes, batches of 2, shared by 2 ranks: 2 optimizer steps an epoch
    assert summary["global_step"] == 4 and summary["n_train"] == 8
    assert "val_generation" in summary
    assert load_model(summary["model_dir"], "cpu").sample(1, steps=2).shape == (1, flat.shape[1])
