#!/bin/bash
# Offline setup of the GPU machine (Python 3.12 with torch, Triton, Lightning preinstalled; no internet) for the
# pipeline, from the repository root:
#     bash benchmarks/gpu_setup.sh [--probe] [--wheels DIR] [--upgrade]
# --probe: install nothing; print the version of every distribution the pipeline needs as the image has it, or
#          MISSING, then exit (one cheap call tells which tiers of benchmarks/gpu_wheels.sh to carry).
# default: install the carried wheels (DIR, default .gpu_wheels; made by benchmarks/gpu_wheels.sh) with --no-deps,
#          skipping distributions the image already has (--upgrade: install every carried wheel anyway), then
#          import every module the stages import, round-trip an MLflow SQLite store, check `dvc`, and print
#          what is missing. Exit 0 when the stages can run (DVC is optional: without it the run goes through
#          the stage scripts), 1 otherwise.
set -o pipefail
cd "$(dirname "$0")/.."
WHEELS=.gpu_wheels PROBE=0 UPGRADE=0
while [ $# -gt 0 ]; do
  case $1 in
    --probe) PROBE=1 ;;
    --wheels) WHEELS=$2; shift ;;
    --upgrade) UPGRADE=1 ;;
    *) echo "unknown option $1 (expected --probe, --wheels DIR, --upgrade)" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-python3}
SITE=/tmp/shd-site  # the fallback install folder
[ -d "$SITE" ] && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export MLFLOW_DISABLE_TELEMETRY=true GX_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1 PIP_DISABLE_PIP_VERSION_CHECK=1
echo "python: $($PY -c 'import sys; print(sys.executable, sys.version.split()[0])')"
command -v make >/dev/null || echo "note: no make here (benchmarks/paper_scale_run.py builds the workspace itself)"

# distributions the stages import, beyond the carried tiers: what the image is expected to have
IMAGE="torch triton numpy scipy lightning pytorch-lightning torchmetrics safetensors pyyaml scikit-image matplotlib
pillow rich huggingface-hub requests tqdm packaging jinja2 pandas"
CARRIED=$(grep -hv '^#' benchmarks/gpu_wheels/core.txt benchmarks/gpu_wheels/dvc.txt | cut -d= -f1)

if [ "$PROBE" = 1 ]; then
  $PY - $IMAGE $CARRIED <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
missing = []
for name in dict.fromkeys(sys.argv[1:]):
    try:
        print(f"{name:36s} {version(name)}")
    except PackageNotFoundError:
        print(f"{name:36s} MISSING"); missing.append(name)
print("missing:", " ".join(missing) or "none")
EOF
  exit 0
fi

if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  # wheels whose distribution the image lacks (all of them with --upgrade)
  TODO=$($PY - "$WHEELS" "$UPGRADE" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    name = wheel.name.split("-")[0].replace("_", "-")
    try:
        version(name)
        if sys.argv[2] == "1":
            print(wheel)
    except PackageNotFoundError:
        print(wheel)
EOF
)
  if [ -n "$TODO" ]; then
    echo "installing $(echo "$TODO" | wc -l) wheels from $WHEELS (the image lacks them):" \
      $(for w in $TODO; do basename "$w" | cut -d- -f1; done)
    # shellcheck disable=SC2086
    if ! $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir $TODO; then
      # an environment we may not write to: beside it, in $SITE (benchmarks/paper_scale_run.py adds it)
      echo "pip could not install into $($PY -c 'import sys; print(sys.prefix)'); installing into $SITE"
      # shellcheck disable=SC2086
      $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" $TODO || exit 1
      echo "then: export PYTHONPATH=$SITE:\$PYTHONPATH (for anything other than paper_scale_run.py)"
    fi
  fi
else
  echo "no wheels in $WHEELS (made by benchmarks/gpu_wheels.sh here, carried there)"
fi

# every module the stages import (prepare .. register), then an MLflow SQLite round trip
$PY - <<'EOF'
import importlib, sys, tempfile
mods = ["torch", "triton", "numpy", "scipy", "yaml", "safetensors", "lightning.pytorch", "rich", "matplotlib",
        "skimage.measure", "trimesh", "manifold3d", "igl", "pandas", "great_expectations", "diffusers", "mlflow",
        "mlflow.pyfunc", "sqlalchemy", "alembic", "typer"]
missing = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as exc:
        missing.append(f"{m} ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})")
if not missing:
    import mlflow
    with tempfile.TemporaryDirectory() as d:
        try:
            mlflow.set_tracking_uri(f"sqlite:///{d}/mlflow.db")
            with mlflow.start_run():
                mlflow.log_metric("x", 1.0)
        except Exception as exc:
            missing.append(f"mlflow sqlite store ({type(exc).__name__}: {str(exc)[:160]})")
print("modules: ok" if not missing else "MISSING: " + "; ".join(missing))
sys.exit(1 if missing else 0)
EOF
RC=$?
if $PY -m dvc --version >/dev/null 2>&1; then echo "dvc: $($PY -m dvc --version)"; else echo "dvc: not installed (stage scripts run directly)"; fi
exit $RC
