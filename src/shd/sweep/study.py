"""An Optuna study in RDB storage that any number of workers can share and that ends with exactly the
requested number of finished trials.

Exactness: `MaxTrialsCallback` alone stops a worker only after one of its trials finished, so N
concurrent workers overshoot by up to N - 1. Here each trial, as it starts, counts the trials with a
lower number (numbers are assigned in creation order by the storage) that are finished or running;
if those already fill the budget it is surplus: it is recorded as failed with the user attribute
`surplus` and does no work. A trial whose worker was killed stops sending heartbeats and is failed
after the grace period (`fail_stale_trials`), which frees its slot for a new trial, so a rerun after a
kill continues until the budget of finished (complete + pruned) trials is met.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from shd.atomic import file_lock
from shd.errors import InputError

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SURPLUS_ATTR = "surplus"

Objective = Callable[[optuna.Trial], float]


class SurplusTrial(Exception):
    """The trial started after the budget was already held by other trials."""


@contextlib.contextmanager
def _stable() -> Iterator[None]:
    """Heartbeats and fail_stale_trials are "experimental" since Optuna 2.9; resuming relies on them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def make_storage(
    url: str,
    heartbeat_interval: int,
    grace_period: int,
    on_stale: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats; a relative SQLite path is made relative to the working directory."""
    engine_kwargs = {}
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}  # several processes write: wait for the lock
    try:
        with _stable():
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=on_stale,
            )
    except Exception as exc:  # sqlalchemy: bad URL, missing driver, unreachable server
        raise InputError("sweep.storage", f"cannot open {redact(url)!r} as an RDB storage ({exc})") from None


def redact(url: str) -> str:
    """The storage URL without its password (it goes into logs and MLflow params)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    direction: str,
    seed: int,
    pruner: optuna.pruners.BasePruner,
) -> tuple[optuna.Study, bool]:
    """Create the study, or load it (a rerun continues it); returns (study, created by this call).

    The TPE seed is `seed` plus the number of trials already in the study, so a fresh study is
    reproducible and a continuing process does not replay the first process's random start.
    """
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, pruner=pruner)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
        created = False
    if study.direction.name.lower() != direction:
        raise InputError(
            f"study {name!r}",
            f"exists with direction {study.direction.name.lower()}, this "
            f"sweep {direction}s; use another study name",
        )
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.get_trials(deepcopy=False)))
    return study, created


def init_lock(folder: str | Path) -> contextlib.AbstractContextManager[None]:
    """Serializes creating the stores among workers on this machine: Optuna's and MLflow's first
    connection to a fresh SQLite database create its tables, and two at once collide."""
    return file_lock(Path(folder) / ".init.lock")


def counts(study: optuna.Study) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    return {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}


def _beat_once_for_silent_trials(study: optuna.Study, adopted: set[int]) -> None:
    """Optuna never counts a RUNNING trial without any heartbeat as stale (its worker died before the
    first beat, or that write failed under load), so it would hold its share of the budget forever.
    One heartbeat recorded on its behalf, once per trial, lets Optuna's own check fail it after the
    grace period if its worker does not beat again (a live worker keeps beating: no harm)."""
    storage = study._storage  # as optuna.storages.fail_stale_trials itself reads it (maybe cached RDB)
    record = getattr(storage, "record_heartbeat", None)
    if record is None or not storage.get_heartbeat_interval():
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial._trial_id not in adopted:
            record(trial._trial_id)
            adopted.add(trial._trial_id)


def run_trials(
    study: optuna.Study,
    objective: Objective,
    target: int,
    n_jobs: int = 1,
    max_failures: int = 3,
    poll_seconds: float = 2.0,
) -> dict[str, int]:
    """Run trials (`n_jobs` threads) until the study holds `target` finished trials; returns counts.

    Failed trials (the objective raised) are recorded and replaced; `max_failures` of them in this
    process stop the sweep with an InputError naming the last error. While the remaining budget is
    held by other workers' running trials this worker waits, taking over when one of them fails.
    """
    lock = threading.Lock()
    failures: list[str] = []

    def guarded(trial: optuna.Trial) -> float:
        ahead = sum(
            1
            for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
            if t.number < trial.number
        )
        if ahead >= target:
            trial.set_user_attr(SURPLUS_ATTR, True)
            study.stop()
            raise SurplusTrial(f"trial {trial.number}: the budget of {target} is held by earlier trials")
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            with lock:
                failures.append(f"trial {trial.number}: {type(exc).__name__}: {exc}")
            raise

    def stop_on_failures(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if len(failures) >= max_failures:
            study.stop()

    adopted: set[int] = set()
    while True:
        with _stable():
            _beat_once_for_silent_trials(study, adopted)
            optuna.storages.fail_stale_trials(study)
        c = counts(study)
        done = c["complete"] + c["pruned"]
        if done >= target:
            return c
        if len(failures) >= max_failures:
            raise InputError(
                f"sweep {study.study_name!r}",
                f"{len(failures)} trials failed in this process (last: {failures[-1]}); "
                "see the MLflow trial runs",
            )
        free = target - done - c["running"]
        if free <= 0:
            time.sleep(poll_seconds)  # the rest is running elsewhere; take over if a trial fails
            continue
        study.optimize(
            guarded,
            n_trials=free,
            n_jobs=min(n_jobs, free),
            catch=(Exception,),
            callbacks=[MaxTrialsCallback(target, states=FINISHED), stop_on_failures],
            gc_after_trial=True,
        )
