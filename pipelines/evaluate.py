"""DVC stage `evaluate`: MMD / COV / 1-NNA against the test split, with yardsticks (REFERENCE.md).

Until a diffusion model exists the generated set is the test-split reconstructions (the upper bound).
Once `models/diffusion` exists, its samples are evaluated instead, through `sample_generated` of the
diffusion package (imported only then: the evaluation layer never depends on diffusion). The
interactive report (shd.report, params section `report`) is built from the stage's files and logged to
the same MLflow run.
"""

from pathlib import Path

import torch

from shd.config import load_params, section_config
from shd.errors import InputError
from shd.eval.evaluate import EvaluateConfig, evaluate_stage, log_evaluation, n_to_sample, resolve_device
from shd.report import ReportConfig, build_report, from_project
from shd.stage import console, main

WEIGHTS = Path("data/weights")
SAMPLES = Path("data/samples")
DIFFUSION = Path("models/diffusion")
REPORT = Path("reports/eval_report.html")


def diffusion_samples(cfg: EvaluateConfig) -> torch.Tensor | None:
    """Weights sampled from the exported diffusion model, 1.1x the references; None while there is none."""
    if not DIFFUSION.exists():
        return None
    try:
        from shd.diffusion.sampler import sample_generated
    except ImportError as exc:
        raise InputError(DIFFUSION, f"exists, but the diffusion package cannot sample it ({exc})") from None
    category, n = n_to_sample(WEIGHTS, SAMPLES, cfg)
    return sample_generated(DIFFUSION, n, category=category, seed=cfg.seed, device=resolve_device(cfg.device))


def run() -> None:
    params = load_params()
    cfg = section_config(params, "evaluate", EvaluateConfig)
    report_cfg = section_config(params, "report", ReportConfig)
    generated = diffusion_samples(cfg)
    report = evaluate_stage(WEIGHTS, SAMPLES, cfg=cfg, generated=generated,
                            generator_name="diffusion" if generated is not None else None, track=False)
    page = build_report(from_project("."), REPORT, report_cfg)
    log_evaluation(report, WEIGHTS, SAMPLES, cfg=cfg, extra_artifacts=[REPORT])
    base = report["yardsticks"]["train_as_generator"]
    console.print(f"evaluate [{report['generator']}, {report['category']}, {report['normalization']}]: "
                  f"MMD {_fmt(report['mmd'])}, COV {_fmt(report['cov'])}, 1-NNA {_fmt(report['nna'])} "
                  f"on {report['n_evaluated']}/{report['n_generated']} shapes ({report['n_empty']} empty); "
                  f"train as generator: MMD {_fmt(base['mmd'])}, 1-NNA {_fmt(base['nna'])}", highlight=False)
    console.print(f"report: {REPORT} ({page.bytes / 1e6:.1f} MB, {page.n_viewers} viewers, "
                  f"{page.seconds['total']:.1f} s)", highlight=False)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


if __name__ == "__main__":
    main(run)
