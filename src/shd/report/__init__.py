"""The interactive evaluation report: one self-contained HTML page per evaluation run (rotatable,
part-coloured shapes beside their nearest training shapes, metrics with yardsticks, versions,
application panels). Sits on top of the evaluation, beside tracking; the CLI is `shd report`."""

from shd.report.build import ReportConfig, ReportSummary, build_report
from shd.report.inputs import EvalOutputs, from_mlflow_run, from_project

__all__ = ["EvalOutputs", "ReportConfig", "ReportSummary", "build_report", "from_mlflow_run", "from_project"]
