"""An evaluation as one MLflow run: the evaluation layer writes its files, this logs them (tracking sits
above eval, so eval itself never imports MLflow)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shd.eval.config import EvalPaths, EvaluateConfig
from shd.tracking.runs import log_stage_run

EXPERIMENT = "shd-evaluate"


def log_evaluation(
    report: dict[str, Any],
    weight_dir: str | Path,
    sample_dir: str | Path,
    paths: EvalPaths | None = None,
    cfg: EvaluateConfig | None = None,
    extra_artifacts: Sequence[str | Path] = (),
) -> str:
    """One MLflow run for a finished evaluation (params, metrics, the stage's files and `extra_artifacts`,
    e.g. the HTML report built from them); returns its run id."""
    paths, cfg = paths or EvalPaths(), cfg or EvaluateConfig()
    generator_name = report["generator"]
    params = {
        "evaluate": asdict(cfg),
        "generator": generator_name,
        "category": report["category"],
        "weights": str(weight_dir),
        "samples": str(sample_dir),
    }
    artifacts = [paths.metrics, paths.nn_cd, paths.generated, paths.samples]
    artifacts += [paths.grid] if cfg.render_count else []
    return log_stage_run(
        EXPERIMENT, f"evaluate-{generator_name}", params, report, [*artifacts, *extra_artifacts]
    )
