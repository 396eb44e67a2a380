"""The `shd` command line (Typer). Each command group lives in its own module and is added here.

Bad input is one clear line on stderr and exit code 2 (`shd.cli.common.clear_errors`).
"""

from __future__ import annotations

import typer

from shd.cli import models
from shd.cli.apps import register as register_apps
from shd.cli.data import data_app
from shd.cli.report import report
from shd.cli.sweep import sweep_app
from shd.progress import quiet_known_noise

app = typer.Typer(
    help="SemanticHyperDiffusion: part-aware diffusion in the weight space of occupancy MLPs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[apps.steps]" is a hint, not Rich markup
)

# every command: Lightning's tips and the known deprecation warnings are silenced (shd.progress)
app.callback()(quiet_known_noise)
app.add_typer(data_app, name="data")
models.register(app)
app.add_typer(sweep_app, name="sweep")
register_apps(app)  # hybrid, interpolate, complete, apps
app.command("report")(report)

__all__ = ["app"]
