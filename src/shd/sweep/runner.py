"""One sweep end to end: params -> study -> trials (each a nested MLflow run) -> best params, plots."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import optuna

from shd import paths
from shd.config import load_params
from shd.errors import InputError
from shd.sweep.best import best_path, write_best
from shd.sweep.config import KindConfig, SweepConfig, sweep_config
from shd.sweep.plots import save_plots
from shd.sweep.runs import close_stale_trial, end_trial_run, finish_parent, parent_run, start_trial_run
from shd.sweep.space import merge, suggest
from shd.sweep.study import init_lock, make_storage, open_study, redact, run_trials


class KindObjective(Protocol):
    section: str
    direction: str
    metric: str
    base: dict[str, Any]

    def update(self, values: dict[str, Any]) -> dict[str, Any]: ...

    def evaluate(
        self, trial: optuna.Trial, section: dict[str, Any], run_id: str, scratch: Path
    ) -> tuple[float, dict[str, Any]]: ...


def make_objective(
    kind: str,
    params: dict[str, Any],
    sweep: SweepConfig,
    kc: KindConfig,
    samples: str | Path,
    weights: str | Path,
) -> KindObjective:
    if kind == "overfit":
        from shd.sweep.overfit import OverfitObjective

        return OverfitObjective(params, kc.fixed, samples, kc.n_shapes)
    from shd.sweep.diffusion import DiffusionObjective

    return DiffusionObjective(params, kc.fixed, weights, samples, sweep.experiment)


def trial_function(
    objective: KindObjective, kc: KindConfig, parent_id: str, scratch_root: Path
) -> Callable[[optuna.Trial], float]:
    """The Optuna objective: suggest, build the trial's section, evaluate in a nested MLflow run."""

    def run(trial: optuna.Trial) -> float:
        values = suggest(trial, kc.space)
        section = merge(objective.base, objective.update(values)[objective.section])
        run_id = start_trial_run(parent_id, trial, values, section)
        scratch = scratch_root / f"{kc.study}-{trial.number:05d}"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            value, metrics = objective.evaluate(trial, section, run_id, scratch)
        except optuna.TrialPruned:
            end_trial_run(run_id, "pruned", _last_report(trial))
            raise
        except BaseException as exc:
            end_trial_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        trial.set_user_attr("metrics", {k: v for k, v in metrics.items() if isinstance(v, int | float | str)})
        end_trial_run(run_id, "complete", {"objective": value, **metrics})
        return value

    return run


def _last_report(trial: optuna.Trial) -> dict[str, float]:
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    steps = frozen.intermediate_values
    return {"objective_at_prune": steps[max(steps)]} if steps else {}


def run_sweep(
    kind: str,
    params_path: str | Path = "params.yaml",
    *,
    trials: int | None = None,
    n_jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    samples: str | Path = paths.SAMPLES,
    weights: str | Path = paths.WEIGHTS,
    out_dir: str | Path | None = None,
    worker: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or continue) the `kind` sweep until its study holds `trials` finished trials.

    Returns counts, the best value and params, and the best-params file (written when at least one
    trial completed). Several processes may run this on the same storage and study at once; give
    each a different `worker` so their seeded samplers differ.
    """
    params = load_params(params_path)
    sc = sweep_config(params)
    kc = sc.kind(kind)
    kc = replace(kc, trials=trials or kc.trials, study=study or kc.study)
    if n_jobs < 1:
        raise InputError("n_jobs", f"must be >= 1, got {n_jobs}")
    out = Path(out_dir or sc.out_dir)
    objective = make_objective(kind, params, sc, kc, samples, weights)
    url = storage or sc.storage
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=kc.pruner_startup_trials, n_warmup_steps=kc.pruner_warmup_steps
    )
    with init_lock(out):
        store = make_storage(url, sc.heartbeat_interval, sc.grace_period, on_stale=close_stale_trial)
        st, created = open_study(store, kc.study, objective.direction, sc.seed + worker, pruner)
        parent = parent_run(
            st,
            store,
            sc.experiment,
            created,
            {
                "kind": kind,
                "study": kc.study,
                "storage": redact(url),
                "trials": kc.trials,
                "seed": sc.seed,
                "direction": objective.direction,
                "objective": objective.metric,
                "n_shapes": kc.n_shapes,
                "space": {
                    d.name: d.choices or [d.low, d.high, d.step, "log" if d.log else "linear"]
                    for d in kc.space
                },
                "fixed": kc.fixed,
            },
        )
    if progress:
        progress(f"sweep {kind}: study {kc.study!r} in {redact(url)}, {kc.trials} finished trials wanted")
    counts = run_trials(
        st,
        trial_function(objective, kc, parent, out / "trials"),
        kc.trials,
        n_jobs,
        sc.max_failures,
        sc.poll_seconds,
    )
    result: dict[str, Any] = {"kind": kind, "study": kc.study, "counts": counts, "parent_run_id": parent}
    artifacts = [(str(p), "plots") for p in save_plots(st, out / "plots")]
    if counts["complete"]:
        best = st.best_trial
        path = best_path(out, kind)
        write_best(
            path, objective.update(best.params), kc.study, best.number, best.value, objective.metric, kind
        )
        artifacts.append((str(path), "best"))
        result.update(
            best_value=best.value,
            best_params=best.params,
            best_trial=best.number,
            best_file=str(path),
            best_metrics=best.user_attrs.get("metrics", {}),
        )
    finish_parent(parent, st, artifacts)
    return result
