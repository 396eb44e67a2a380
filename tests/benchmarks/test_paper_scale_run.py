"""benchmarks/paper_scale_run.py: stages in dvc.yaml's dependency order, each timed into the record as it
goes, through DVC or through the stages' own commands, in a profile workspace (a tmp copy of the repo)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from ..test_profiles import BIN, _run, checkout, needs_tools  # noqa: F401 (checkout: a fixture)

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import paper_scale_run as psr  # noqa: E402

ROOT = Path(__file__).parents[2]


def test_stages_come_in_dependency_order():
    order = psr.stage_order(ROOT / "dvc.yaml")
    assert order == ["prepare", "validate", "sample", "overfit", "train", "evaluate", "register"]


def test_a_cycle_is_named(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "a": {"cmd": "x", "deps": ["b.txt"], "outs": ["a.txt"]},
                    "b": {"cmd": "y", "deps": ["a.txt"], "outs": ["b.txt"]},
                }
            }
        )
    )
    with pytest.raises(ValueError, match="dependency cycle"):
        psr.stage_order(tmp_path / "dvc.yaml")


@needs_tools
@pytest.mark.parametrize(
    "use_dvc", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["stage commands", "dvc repro"]
)
def test_each_stage_is_timed_into_the_record_and_a_failure_stops_the_run(checkout, tmp_path, use_dvc):  # noqa: F811
    params = yaml.safe_load((checkout / "params.yaml").read_text())
    params["prepare"].update(counts={"airplane": 3}, split_sizes={"train": 1, "val": 1, "test": 1})
    params["validate"].update(min_pass_rate=0.5)
    params["sample"]["bogus"] = 1  # the sample stage refuses an unknown key: the run stops there
    (checkout / "params-profiles" / "tiny.yaml").write_text(yaml.safe_dump(params))
    assert _run(["make", "workspace", "PROFILE=tiny", f"BIN={BIN}"], checkout).returncode == 0
    ws = checkout / "runs" / "tiny"
    out = tmp_path / "out"
    out.mkdir()
    record = {"stages": {}, "exit_codes": {}}
    rc = psr.run_stages(
        ws, ["prepare", "validate", "sample", "overfit"], use_dvc, out, record, sys.executable
    )
    saved = json.loads((out / "paper_scale_run.json").read_text())
    assert rc != 0 and saved == record
    assert list(saved["stages"]) == ["prepare", "validate", "sample"]  # overfit never started
    assert saved["exit_codes"]["prepare"] == 0 and saved["exit_codes"]["validate"] == 0
    assert saved["exit_codes"]["sample"] != 0
    assert (
        all(s > 0 for s in saved["stages"].values())
        and saved["wall_seconds"] >= sum(saved["stages"].values()) - 1
    )
    assert len(json.loads((ws / "data" / "prepared" / "index.json").read_text())["shapes"]) == 3
    log = (out / "paper_scale_log.txt").read_text()
    assert "===== sample" in log and ("dvc repro --single-item prepare" in log) == use_dvc
    assert (ws / "dvc.lock").exists() == use_dvc
    tar = psr.bundle(ws, out)
    assert tar.stat().st_size > 0
