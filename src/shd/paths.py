"""The project's file layout in one place: each DVC stage's inputs and outputs, relative to the project root.

`metrics/*.json` are DVC metrics: only deterministic headline numbers, committed with dvc.lock so that
`dvc exp show` / `dvc metrics diff` compare experiments; `reports/*.json` hold the whole documents (run
ids, timings, names).

`dvc.yaml` names the same paths (it cannot import them); tests/pipelines/test_dvc_deps.py checks that its
outputs are the ones listed here, so a path is renamed in two places, never in twelve.
"""

from pathlib import Path

PARAMS = Path("params.yaml")

# prepare -> validate -> sample
PREPARED = Path("data/prepared")
VALIDATED = Path("data/validated")
VALIDATION_REPORT = Path("reports/validation.json")
VALIDATION_METRICS = Path("metrics/validation.json")
VALIDATION_DOCS = Path("reports/validation_docs")
SAMPLES = Path("data/samples")

# overfit: one occupancy field per shape
WEIGHTS = Path("data/weights")
OVERFIT_METRICS = Path("metrics/overfit.json")
OVERFIT_REPORT = Path("reports/overfit.json")
OVERFIT_IOU_PLOT = Path("reports/overfit_iou.png")

# train: the diffusion model (checkpoints) and its export
DIFFUSION = Path("models/diffusion")
MODEL = DIFFUSION / "model"
TRAIN_METRICS = Path("metrics/train.json")
TRAIN_REPORT = Path("reports/train.json")

# evaluate
EVAL_DIR = Path("data/eval")
EVAL_METRICS = Path("metrics/eval.json")
EVAL_JSON = Path("reports/eval.json")  # the whole evaluation; EVAL_METRICS holds its headline numbers
EVAL_NN_CD = Path("plots/eval/nn_cd.csv")
EVAL_GRID = Path("reports/eval_grid.png")
EVAL_REPORT = Path("reports/eval_report.html")

# register
REGISTER_RECORD = Path("reports/register.json")  # run id, version, decision: a record, not metrics

# `make apps` (not a stage)
APPS_REPORTS = Path("reports/apps")
APPS_METRICS = Path("metrics/apps.json")

# the quality table (benchmarks/bench_paper_scale.py, not a stage; single-MLP baseline beside the stages')
QUALITY_TABLE = Path("metrics/quality_table.json")
SINGLE_WEIGHTS = Path("data/weights_single")
SINGLE_DIFFUSION = Path("models/diffusion_single")
