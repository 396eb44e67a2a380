"""The exact trial budget of a shared study (threads here; processes in test_sweep_runs)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest

from shd.errors import InputError
from shd.sweep.diffusion import WORST, generation_objective
from shd.sweep.study import make_storage, open_study, run_trials


def _study(tmp_path: Path, name: str = "s") -> optuna.Study:
    storage = make_storage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=1, grace_period=3)
    return open_study(storage, name, "minimize", 0, optuna.pruners.NopPruner())[0]


def test_concurrent_threads_end_with_exactly_the_budget(tmp_path: Path) -> None:
    study = _study(tmp_path)
    active, peak = [0], [0]
    lock = threading.Lock()

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return x * x

    counts = run_trials(study, objective, target=7, n_jobs=3, poll_seconds=0.1)
    assert counts["complete"] == 7 and peak[0] > 1
    assert all(t.user_attrs.get("surplus") for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    assert run_trials(study, objective, target=7)["complete"] == 7  # a rerun has nothing left to do


def test_failed_trials_are_replaced_then_stop_the_sweep(tmp_path: Path) -> None:
    study = _study(tmp_path)

    def flaky(trial: optuna.Trial) -> float:
        if trial.number == 1:
            raise RuntimeError("diverged")
        return trial.suggest_float("x", 0, 1)

    assert run_trials(study, flaky, target=3, max_failures=2)["complete"] == 3
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]

    def broken(trial: optuna.Trial) -> float:
        raise RuntimeError("bad setup")

    with pytest.raises(InputError, match="2 trials failed.*bad setup"):
        run_trials(_study(tmp_path, "t"), broken, target=3, max_failures=2)


def test_existing_study_with_other_direction_is_refused(tmp_path: Path) -> None:
    storage = make_storage(f"sqlite:///{tmp_path}/optuna.db", 1, 3)
    open_study(storage, "s", "minimize", 0, optuna.pruners.NopPruner())
    with pytest.raises(InputError, match="direction"):
        open_study(storage, "s", "maximize", 0, optuna.pruners.NopPruner())


def test_generation_objective_ranks_trials_that_1nna_ties() -> None:
    """At the sweep's budget 1-NNA is 1.0 for most trials; the objective still orders them by MMD."""
    a = generation_objective({"all": {"1-nna": 1.0, "mmd": 0.02}})
    b = generation_objective({"all": {"1-nna": 1.0, "mmd": 0.03}})
    assert a < b < WORST and a == pytest.approx(0.02 / 1.02)
    assert generation_objective({"all": {"1-nna": None, "mmd": None}}) == WORST
    assert generation_objective({"all": {"mmd": float("nan")}}) == WORST
    assert generation_objective({"airplane": {"mmd": 0.0}, "chair": {"mmd": float("inf")}}) == pytest.approx(
        0.5
    )


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_replaced(tmp_path: Path) -> None:
    """A RUNNING trial with no heartbeat at all is never stale to Optuna; without help the sweep would
    wait for it forever. It is failed after the grace period and the budget is filled."""
    study = _study(tmp_path)
    silent = study.ask()  # RUNNING, and no heartbeat thread ever beats for it (its worker is gone)
    done = threading.Event()
    result: dict = {}

    def sweep() -> None:
        objective = lambda t: t.suggest_float("x", -1, 1) ** 2  # noqa: E731
        result.update(run_trials(study, objective, target=2, poll_seconds=0.2))
        done.set()

    threading.Thread(target=sweep, daemon=True).start()
    assert done.wait(60), "the sweep waited on the dead trial"
    assert result["complete"] == 2
    assert study.trials[silent.number].state == optuna.trial.TrialState.FAIL
