"""`shd sweep ...`: Optuna sweeps of the overfit and diffusion hyperparameters, and applying the best."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shd import paths
from shd.cli.common import clear_errors
from shd.errors import InputError

sweep_app = typer.Typer(
    help="Optuna sweeps (search spaces in params.yaml `sweep`), tracked in MLflow.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Trials = Annotated[
    int | None,
    typer.Option(
        help="Finished trials the study should end with (default: params.yaml sweep.<kind>.trials)."
    ),
]
NJobs = Annotated[int, typer.Option("--n-jobs", help="Trials run at once in this process (threads).")]
Storage = Annotated[
    str | None,
    typer.Option(
        help="Optuna storage URL (default: sweep.storage); a shared "
        "database lets several machines work on one study."
    ),
]
Study = Annotated[str | None, typer.Option(help="Study name (default: sweep.<kind>.study).")]
Worker = Annotated[int, typer.Option(help="This process's index among concurrent workers (seeds differ).")]
Params = Annotated[Path, typer.Option(help="The params file.")]


def _run(
    kind: str,
    trials: int | None,
    n_jobs: int,
    storage: str | None,
    study: str | None,
    samples: Path,
    weights: Path,
    params: Path,
    worker: int,
) -> None:
    from shd.sweep import run_sweep

    result = run_sweep(
        kind,
        params,
        trials=trials,
        n_jobs=n_jobs,
        storage=storage,
        study=study,
        samples=samples,
        weights=weights,
        worker=worker,
        progress=typer.echo,
    )
    c = result["counts"]
    typer.echo(
        f"study {result['study']!r}: {c['complete']} complete, {c['pruned']} pruned, "
        f"{c['fail']} failed "
        f"(MLflow parent run {result['parent_run_id']})"
    )
    if "best_value" in result:
        typer.echo(
            f"best trial {result['best_trial']}: objective {result['best_value']:.6g}, "
            f"params {result['best_params']} -> {result['best_file']}"
        )


@sweep_app.command("overfit")
@clear_errors
def overfit(
    trials: Trials = None,
    n_jobs: NJobs = 1,
    storage: Storage = None,
    study: Study = None,
    samples: Annotated[Path, typer.Option(help="Sample set to fit.")] = paths.SAMPLES,
    params: Params = Path("params.yaml"),
    worker: Worker = 0,
) -> None:
    """Sweep the field and fit settings; objective: mean held-out IoU at the fixed step budget.

    Example: shd sweep overfit --trials 8 --n-jobs 2
    """
    _run("overfit", trials, n_jobs, storage, study, samples, paths.WEIGHTS, params, worker)


@sweep_app.command("diffusion")
@clear_errors
def diffusion(
    trials: Trials = None,
    n_jobs: NJobs = 1,
    storage: Storage = None,
    study: Study = None,
    weights: Annotated[Path, typer.Option(help="Weight set to train on.")] = paths.WEIGHTS,
    samples: Annotated[Path, typer.Option(help="Sample set (validation clouds).")] = paths.SAMPLES,
    params: Params = Path("params.yaml"),
    worker: Worker = 0,
) -> None:
    """Sweep the denoiser and schedule; objective: validation 1-NNA of the generation check (MMD breaks ties).

    Example: shd sweep diffusion --storage postgresql://user@host/optuna --worker 1
    """
    _run("diffusion", trials, n_jobs, storage, study, samples, weights, params, worker)


@sweep_app.command("apply")
@clear_errors
def apply(
    kind: Annotated[str, typer.Argument(help="overfit | diffusion")],
    best: Annotated[
        Path | None, typer.Option(help="Best-params file (default: sweeps/best_<kind>.yaml).")
    ] = None,
    params: Params = Path("params.yaml"),
) -> None:
    """Merge the sweep's best params into params.yaml (comments kept), so `dvc repro` reruns with them.

    Example: shd sweep apply diffusion && dvc repro
    """
    from shd.config import load_params
    from shd.sweep import KINDS, apply_best, best_path
    from shd.sweep.config import sweep_config

    if kind not in KINDS:
        raise InputError(kind, f"unknown sweep kind; expected one of {', '.join(KINDS)}")
    best = best or best_path(sweep_config(load_params(params)).out_dir, kind)
    changed = apply_best(params, best)
    if not changed:
        typer.echo(f"{params}: already has the best {kind} params of {best}")
    for key, (old, new) in changed.items():
        typer.echo(f"{key}: {old!r} -> {new!r}")
