"""Registration and promotion against a real local SQLite MLflow store (no mocks of MLflow)."""

from __future__ import annotations

import math

import pytest
from mlflow import MlflowClient

from shd.errors import InputError
from shd.mlflow_store import client
from shd.tracking.card import build_card
from shd.tracking.promotion import Candidate, Score, decide, model_name
from shd.tracking.registry import CHAMPION, champion_of, promote, register
from tests.tracking.conftest import PARTS, eval_report, export_tiny_model

SPLIT_A = ["airplane_a1", "airplane_a2"]


def card(folder, report, test_ids=SPLIT_A):
    return build_card(
        folder,
        report,
        test_ids,
        {"airplane": PARTS},
        {"evaluate": {"resolution": 16}},
        {"dvc": {"data/weights": "abc.dir"}, "git_commit": None},
    )


def candidate(nna, mmd=0.5, cov=0.5, split="s", version="1"):
    return Candidate(version, Score(nna, mmd, cov), split, "p")


def test_decide_ranks_by_nna_then_mmd_then_cov():
    champ = candidate(0.7, 0.5, 0.5)
    assert decide(candidate(0.6), champ).promote
    assert not decide(candidate(0.8, 0.1, 0.9), champ).promote
    assert decide(candidate(0.7, 0.4, 0.1), champ).promote  # tie on 1-NNA: lower MMD wins
    assert decide(candidate(0.7, 0.5, 0.6), champ).promote  # tie on both: higher COV wins
    tie = decide(candidate(0.7, 0.5, 0.5), champ)
    assert not tie.promote and tie.outcome == "kept"
    assert decide(candidate(0.9), None).outcome == "promoted"


def test_decide_refuses_nan_and_follows_the_split_policy():
    for bad in (candidate(math.nan), candidate(0.1, math.nan), candidate(0.1, 0.1, math.nan)):
        assert decide(bad, None).outcome == "refused"
    other = candidate(0.1, split="other")
    assert decide(candidate(0.9), other, "promote").promote
    kept = decide(candidate(0.9), other, "keep")
    assert not kept.promote and "another test split" in kept.reason
    with pytest.raises(InputError, match="on_split_mismatch"):
        decide(candidate(0.5), other, "sometimes")


def test_model_name_per_category():
    assert model_name(["airplane"]) == "shd-airplane"
    assert model_name(["airplane", "chair"]) == "shd-airplane-chair"
    assert model_name(["airplane"], "custom") == "custom"


def test_better_version_takes_champion_worse_does_not_nan_never(store, tmp_path):
    name = "shd-registry-test"
    first = register(export_tiny_model(tmp_path / "m1", 1), card(tmp_path / "m1", eval_report(0.8)), name)
    assert first["decision"] == "promoted" and first["new_version"]
    better = register(export_tiny_model(tmp_path / "m2", 2), card(tmp_path / "m2", eval_report(0.6)), name)
    assert better["decision"] == "promoted" and better["champion_before"] == first["version"]
    worse = register(export_tiny_model(tmp_path / "m3", 3), card(tmp_path / "m3", eval_report(0.7)), name)
    assert worse["decision"] == "kept" and worse["champion"] == better["version"]
    nan = register(export_tiny_model(tmp_path / "m4", 4), card(tmp_path / "m4", eval_report(None)), name)
    assert nan["decision"] == "refused" and not nan["promoted"]

    assert champion_of(name).version == better["version"]
    mv = client().get_model_version(name, worse["version"])
    assert mv.tags["decision"] == "kept" and float(mv.tags["metric.nna"]) == 0.7
    assert mv.tags["compared_with"] == f"version {better['version']}"
    assert client().get_model_version(name, nan["version"]).tags["metric.nna"] == "nan"
    assert promote(name, nan["version"], force=True).outcome == "refused"  # not even by hand
    assert champion_of(name).version == better["version"]

    forced = promote(name, worse["version"], force=True)
    assert forced.promote and "forced" in forced.reason
    assert champion_of(name).version == worse["version"]
    assert promote(name, better["version"]).outcome == "promoted"  # 0.6 beats 0.7 again


def test_rerun_reuses_the_version_and_mismatched_split_follows_policy(store, tmp_path):
    name = "shd-split-test"
    folder = export_tiny_model(tmp_path / "m", 5)
    first = register(folder, card(folder, eval_report(0.5)), name)
    again = register(folder, card(folder, eval_report(0.5)), name)
    assert not again["new_version"] and again["version"] == first["version"]
    assert "already the champion" in again["reason"]

    worse_elsewhere = card(folder, eval_report(0.9), test_ids=["airplane_b1"])
    kept = register(folder, worse_elsewhere, name, on_split_mismatch="keep")
    assert kept["decision"] == "kept" and "another test split" in kept["reason"]
    moved = register(
        export_tiny_model(tmp_path / "n", 6), card(tmp_path / "n", eval_report(0.9), ["airplane_b1"]), name
    )
    assert moved["decision"] == "promoted" and champion_of(name).version == moved["version"]


def test_a_failed_registration_leaves_no_version_and_no_alias(store, tmp_path, monkeypatch):
    name = "shd-atomic-test"
    folder = export_tiny_model(tmp_path / "m", 7)
    register(folder, card(folder, eval_report(0.5)), name)
    before = {v.version for v in client().search_model_versions(f"name = '{name}'")}

    def refuse(*args, **kwargs):
        raise RuntimeError("store went away")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", refuse)
    other = export_tiny_model(tmp_path / "n", 8)
    with pytest.raises(RuntimeError, match="went away"):
        register(other, card(other, eval_report(0.1)), name)
    after = {v.version for v in client().search_model_versions(f"name = '{name}'")}
    assert after == before
    aliases = client().get_registered_model(name).aliases
    assert {k: str(v) for k, v in aliases.items()} == {CHAMPION: str(min(before, key=int))}


REGISTER_ONE = """
import sys
from pathlib import Path
import shd.mlflow_store as store
store.DEFAULT_DIR = Path(sys.argv[1])
from shd.tracking.card import build_card
from shd.tracking.registry import register
from tests.tracking.conftest import PARTS, eval_report, export_tiny_model
folder = export_tiny_model(Path(sys.argv[2]), seed=int(sys.argv[3]))
card = build_card(folder, eval_report(float(sys.argv[4])), ["airplane_a1"], {"airplane": PARTS}, {}, {})
print(register(folder, card, "shd-race")["version"])
"""


@pytest.fixture(params=["sqlite", "postgres"])
def race_store(request, tmp_path) -> str:
    """The store the racing processes share: a local SQLite file (file lock) or a database on a real
    PostgreSQL server (advisory lock: what several machines sharing one store rely on)."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_database")
    store_dir = tmp_path / "mlruns"
    store_dir.mkdir()
    return f"sqlite:///{(store_dir / 'mlflow.db').resolve()}"


def test_concurrent_registrations_leave_the_alias_on_the_best(tmp_path, race_store):
    """Four processes register at once (1-NNA 0.9, 0.6, 0.8, 0.7) on one store: every version gets its
    decision and `champion` ends on the 0.6 one, whatever the interleaving."""
    import os
    import subprocess
    import sys

    from tests.tiny_project import REPO

    script = tmp_path / "register_one.py"
    script.write_text(REGISTER_ONE)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(
        PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}",
        OMP_NUM_THREADS="1",
        SHD_MODEL_CACHE=str(tmp_path / "cache"),
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    client_uri = race_store
    if client_uri.startswith("postgresql"):
        env["MLFLOW_TRACKING_URI"] = client_uri  # the processes could be on other machines
    store_dir = tmp_path / "mlruns"
    # create the store once: MLflow's first connections to a fresh database race on its tables
    MlflowClient(client_uri).search_experiments()
    scores = (0.9, 0.6, 0.8, 0.7)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(store_dir), str(tmp_path / f"m{i}"), str(i), str(nna)],
            env=env,
            cwd=tmp_path,  # a server-less Postgres store puts artifacts under ./mlruns
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, nna in enumerate(scores)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [
        (p.returncode, o[1][-3000:]) for p, o in zip(procs, outs, strict=True)
    ]
    versions = [out.strip().splitlines()[-1] for out, _ in outs]
    c = MlflowClient(client_uri, registry_uri=client_uri)
    assert len(set(versions)) == 4
    assert str(c.get_model_version_by_alias("shd-race", CHAMPION).version) == versions[1]
    assert all(c.get_model_version("shd-race", v).tags["decision"] != "pending" for v in versions)
