"""`shd report RUN`: the interactive evaluation report of a project folder or an MLflow evaluate run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from shd import paths
from shd.cli.common import clear_errors
from shd.errors import InputError

DEFAULT_OUT = paths.EVAL_REPORT


@clear_errors
def report(
    run: Annotated[
        str,
        typer.Argument(
            help="A project folder (its reports/eval.json and data/eval/), or the "
            "run id of an MLflow evaluate run (experiment shd-evaluate)."
        ),
    ],
    project: Annotated[
        Path,
        typer.Option(
            help="Project whose weight set, MLflow store (mlruns/), dvc.lock "
            "and params.yaml a run id is read with."
        ),
    ] = Path("."),
    out: Annotated[
        Path | None,
        typer.Option(
            help="HTML file to write (default: <project>/reports/"
            "eval_report.html, or eval_report-<run id>.html)."
        ),
    ] = None,
    apps: Annotated[
        Path | None,
        typer.Option(
            help="Folder of application outputs (*/summary.json); default: params.yaml report.apps."
        ),
    ] = None,
    log: Annotated[
        bool, typer.Option(help="Also log the page as an artifact of the MLflow run (run ids only).")
    ] = False,
) -> None:
    """Write one self-contained HTML page (no network needed to open it): metrics with yardsticks,
    versions, rotatable part-coloured shapes beside their nearest training shapes, the worst-covered
    references, and the hybrid / interpolation / completion panels when their outputs exist.

    Example: shd report .   |   shd report 3f2a...c9 --project . --log
    """
    from shd.config import load_params, section_config
    from shd.report import ReportConfig, build_report, from_mlflow_run, from_project
    from shd.report.inputs import RUN_ID

    folder = Path(run)
    root = folder if folder.is_dir() else project
    params = root / "params.yaml"
    cfg = (
        section_config(load_params(params), "report", ReportConfig, str(params))
        if params.exists()
        else ReportConfig()
    )
    with tempfile.TemporaryDirectory(prefix="shd-report-") as tmp:
        if folder.is_dir():
            outputs = from_project(folder)
            target = out or folder / DEFAULT_OUT
        elif RUN_ID.match(run):
            outputs = from_mlflow_run(run, project, tmp)
            target = out or project / DEFAULT_OUT.with_name(f"eval_report-{run}.html")
        else:
            raise InputError(f"RUN '{run}'", "expected a project folder or a 32-hex-digit MLflow run id")
        if log and outputs.run_id is None:
            raise InputError("--log", "needs an MLflow run id as RUN (a folder has no run to log to)")
        summary = build_report(outputs, target, cfg, apps)
    if log:
        import mlflow

        mlflow.MlflowClient().log_artifact(outputs.run_id, str(target))
    typer.echo(
        f"wrote {target} ({summary.bytes / 1e6:.1f} MB, {summary.n_viewers} viewers, "
        f"{summary.n_meshes} meshes){' and logged it to run ' + outputs.run_id if log else ''}"
    )
