"""Optuna's matplotlib plots of a study (plotly is not installed): history, importances, parallel
coordinates, written as PNGs to log on the study's parent run."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna

from shd.atomic import write_with

PLOTS = ("history", "importances", "parallel")


def save_plots(study: optuna.Study, folder: str | Path) -> list[Path]:
    """The plots that the study supports so far (importances need two complete trials with more than
    one distinct value per searched parameter); returns the written files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    makers = {
        "history": ovm.plot_optimization_history,
        "importances": ovm.plot_param_importances,
        "parallel": ovm.plot_parallel_coordinate,
    }
    folder = Path(folder)
    written = []
    for name in PLOTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" and "too few trials" notes
            try:
                ax = makers[name](study)
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # not enough finished trials for this plot yet
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        path = folder / f"{study.study_name}_{name}.png"
        write_with(path, lambda p, fig=fig: fig.savefig(p, format="png", dpi=100, bbox_inches="tight"))
        plt.close(fig)
        written.append(path)
    return written
