"""`make apps` (not a DVC stage: minutes of meshing on a CPU): the part-level applications on the
trained model, for the evaluation report.

Writes one example folder per command under reports/apps/ (hybrid, interpolate, complete: meshes,
PNG strips, GIFs, summary.json) and, last, metrics/apps.json: hybrid part fidelity, completion
1-NNA against the test split (kept experts bit-identical), interpolation smoothness.
"""

from pathlib import Path

from shd.apps.config import AppsConfig
from shd.apps.examples import write_examples
from shd.apps.quality import quality_figures, write_quality
from shd.config import load_params, section_config
from shd.data.sample_store import SampleSet
from shd.diffusion.export import load_model
from shd.eval.evaluate import resolve_device
from shd.fields.weight_set import WeightSet
from shd.stage import console, main

WEIGHTS = Path("data/weights")
SAMPLES = Path("data/samples")
MODEL = Path("models/diffusion/model")
REPORTS = Path("reports/apps")
METRICS = Path("metrics/apps.json")


def run() -> None:
    cfg = section_config(load_params(), "apps", AppsConfig)
    sampler = load_model(MODEL, device=resolve_device(cfg.device))
    weights = WeightSet.open(WEIGHTS)
    write_examples(sampler, weights, REPORTS, cfg=cfg)
    report = quality_figures(sampler, weights, SampleSet.open(SAMPLES), cfg=cfg)
    write_quality(METRICS, report)
    stitched = report["hybrid"]["variants"]["stitched"]["mean_part_cd"]
    comp = report["completion"]
    console.print(
        f"apps ({report['category']}): hybrid part CD to source {stitched}, completion 1-NNA "
        f"{comp['completion']['nna']} (kept bit-identical: {comp['kept_bit_identical']}), "
        f"interpolation jump linear {report['interpolation']['linear']['mean_jump']}",
        highlight=False,
    )


if __name__ == "__main__":
    main(run)
