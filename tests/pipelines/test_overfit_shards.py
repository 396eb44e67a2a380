"""Array-job overfitting: `pipelines/overfit.py --shard i/n` processes running at once merge into the
weight set a single process writes (issue: multi-GPU; here CPU processes stand in for GPUs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import torch
import yaml

from shd.fields.weight_set import WeightSet
from tests.tiny_project import make_project, run_stage, stage_env


def _project(root, tiny_project):
    """The tiny project's sample set, overfit in weight shards of 3 from a shared first-shape init."""
    make_project(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["overfit"].update(shard_size=3, init="first_shape")
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(tiny_project / "data" / "samples", root / "data" / "samples")
    return root


def test_two_shard_processes_at_once_merge_into_the_single_process_weight_set(tiny_project, tmp_path):
    single = _project(tmp_path / "single", tiny_project)
    done = run_stage(single, "overfit")
    assert done.returncode == 0, done.stderr
    sharded = _project(tmp_path / "sharded", tiny_project)
    env = {**stage_env(), "OMP_NUM_THREADS": "1"}
    # shard 1 starts first and waits for shard 0's shared initialization
    procs = [
        subprocess.Popen(
            [sys.executable, "pipelines/overfit.py", "--shard", f"{i}/2"],
            cwd=sharded,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 0)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    a, b = WeightSet.open(single / "data" / "weights"), WeightSet.open(sharded / "data" / "weights")
    assert a.ids(status=None) == b.ids(status=None) and len(a.ids(status=None)) >= 5
    assert a.layout.to_json() == b.layout.to_json()
    ids = a.ids(status=None)
    torch.testing.assert_close(b.load_flat(ids), a.load_flat(ids), rtol=1e-5, atol=1e-6)
    shards = sorted(p.name for p in (sharded / "data" / "weights").glob("shard-*.safetensors"))
    assert len(shards) >= 2
    summary = json.loads((sharded / "reports" / "overfit.json").read_text())  # metrics/ holds numbers only
    assert summary["n_shapes"] == len(ids)


def test_a_bad_shard_argument_is_one_clear_line(tiny_project, tmp_path):
    root = _project(tmp_path / "bad", tiny_project)
    done = subprocess.run(
        [sys.executable, "pipelines/overfit.py", "--shard", "2/2"],
        cwd=root,
        env=stage_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "--shard" in done.stdout + done.stderr and "Traceback" not in done.stderr
