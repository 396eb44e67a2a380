#!/bin/bash
# Runs sample -> overfit -> train -> evaluate on the device, then 1-NNA per sampler setting.
set -o pipefail
python -m pip install -q --no-index --find-links ../.gpu_wheels --no-deps diffusers libigl 2>&1 | tail -2
python -m pip install -q --no-index --find-links ../.gpu_wheels mlflow-skinny==3.17.2 sqlalchemy alembic trimesh==5.2.0 2>&1 | tail -2
export PYTHONPATH=$PWD/src MLFLOW_DISABLE_TELEMETRY=true
nvidia-smi --query-gpu=name --format=csv,noheader
for s in ${STAGES:-sample overfit train evaluate}; do
  t0=$SECONDS; python pipelines/$s.py > log_$s.txt 2>&1; rc=$?
  grep -v -i warn log_$s.txt | tail -4; echo "STAGE $s rc=$rc $((SECONDS - t0)) s"
  mkdir -p $OUT/gpurun; cp log_$s.txt $OUT/gpurun/; [ $rc -eq 0 ] || exit 1
done
python - <<'PY'
import json, sys, torch
sys.path.insert(0, "../benchmarks")
from bench_diffusion import nna_per_setting
rows = nna_per_setting("models/diffusion/model", "data/samples", 128, torch.device("cuda"))
print(json.dumps(rows))
json.dump(rows, open("metrics/nna_per_setting.json", "w"), indent=1)
PY
mkdir -p $OUT/gpurun && cp -r metrics reports/*.png $OUT/gpurun/ 2>/dev/null; cp models/diffusion/model/config.json $OUT/gpurun/model_config.json
# optional: the part-level applications' quality figures on this GPU-trained model
if [ -n "$APPS" ]; then
  python ../benchmarks/bench_apps.py --project . --device cuda --threads 8 > log_apps.txt 2>&1; echo "apps rc=$?"
  tail -3 log_apps.txt; cp ../benchmarks/results/apps_cuda.json $OUT/gpurun/ 2>/dev/null
fi
