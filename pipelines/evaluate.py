"""DVC stage `evaluate`: MMD / COV / 1-NNA against the test split, with yardsticks (REFERENCE.md).

Until a diffusion model exists the generated set is the test-split reconstructions (the upper bound).
Once `models/diffusion` exists, its samples are evaluated instead, through `sample_generated` of the
diffusion package (imported only then: the evaluation layer never depends on diffusion). The
interactive report (shd.report, params section `report`) is built from the stage's files and logged to
the same MLflow run.
"""

from shd import paths
from shd.config import load_params, section_config
from shd.devices import resolve_device
from shd.errors import InputError
from shd.eval.evaluate import EvaluateConfig, evaluate_generator, evaluate_stage, summary_line
from shd.fields.weight_set import WeightSet
from shd.report import ReportConfig, build_report, from_project
from shd.stage import console, main, write_metrics
from shd.tracking.evaluation import log_evaluation

WEIGHTS, SAMPLES, DIFFUSION, REPORT = paths.WEIGHTS, paths.SAMPLES, paths.DIFFUSION, paths.EVAL_REPORT
HEADLINE = {  # the headline numbers of reports/eval.json -> metrics/eval.json (DVC metrics, tracked)
    **{k: k for k in ("mmd", "cov", "nna")},
    "nna_train": "yardsticks.train_as_generator.nna",  # the train set as generator: the yardstick
}


def diffusion_sampler(cfg: EvaluateConfig):
    """`sample(n, category, seed)` from the exported diffusion model; None while there is none."""
    if not DIFFUSION.exists():
        return None
    try:
        from shd.diffusion.api import sample_generated
    except ImportError as exc:
        raise InputError(DIFFUSION, f"exists, but the diffusion package cannot sample it ({exc})") from None
    device = resolve_device(cfg.device, "evaluate.device")
    layout = WeightSet.open(WEIGHTS).layout  # a model trained on another layout is refused
    return lambda n, category, seed: sample_generated(
        DIFFUSION, n, category=category, seed=seed, device=device, layout=layout
    )


def run() -> None:
    params = load_params()
    cfg = section_config(params, "evaluate", EvaluateConfig)
    report_cfg = section_config(params, "report", ReportConfig)
    sample = diffusion_sampler(cfg)
    if sample is None:
        report = evaluate_stage(WEIGHTS, SAMPLES, cfg=cfg)
    else:
        report = evaluate_generator(sample, WEIGHTS, SAMPLES, cfg=cfg, generator_name="diffusion")
    write_metrics(paths.EVAL_METRICS, report, HEADLINE)
    page = build_report(from_project("."), REPORT, report_cfg)
    log_evaluation(report, WEIGHTS, SAMPLES, cfg=cfg, extra_artifacts=[REPORT])  # one run: metrics + page
    console.print(summary_line(report), highlight=False)
    console.print(
        f"report: {REPORT} ({page.bytes / 1e6:.1f} MB, {page.n_viewers} viewers, "
        f"{page.seconds['total']:.1f} s)",
        highlight=False,
    )


if __name__ == "__main__":
    main(run)
