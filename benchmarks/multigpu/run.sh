#!/bin/bash
# Multi-GPU scaling (benchmarks/bench_multigpu.py) on one machine with N GPUs, from the repository root:
#     bash benchmarks/multigpu/run.sh
# Needs .gpu_wheels/ (diffusers, libigl, trimesh, mlflow-skinny and their wheels) and .gpurun/ (params.yaml,
# data/prepared + data/validated). Steps: wheels, sample stage (in the project), DDP throughput, overfit array
# jobs, DDP loss parity, report. Each step has a hard `timeout` inside one overall budget
# (BUDGET_S, default 380 s, plus at most 20 s for the report), so a hang cannot take the rest; the parts and
# logs are written to $OUT/multigpu as they come, the merged results file is copied to $OUT.
# Back home: python benchmarks/bench_multigpu.py report --from-json FETCHED/multigpu_cuda.json
# (or `report --work FETCHED/multigpu` when the report step did not run there).
# Overrides for a CPU smoke run: ACCELERATOR=cpu DEVICES=2 PROJECT=dir INSTALL=0 DIFFUSION_ARGS="--vectors 512".
set -o pipefail
OUT=${OUT:-/tmp/shd-multigpu-out}
WORK=$OUT/multigpu
PY=${PYTHON:-python}
BENCH=benchmarks/bench_multigpu.py
ACCELERATOR=${ACCELERATOR:-gpu}
PROJECT=${PROJECT:-.gpurun}
DEVICES=${DEVICES:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$DEVICES" -ge 1 ] 2>/dev/null || DEVICES=1
DEADLINE=$((SECONDS + ${BUDGET_S:-380}))
export PYTHONPATH=$PWD/src MLFLOW_DISABLE_TELEMETRY=true
# NVLink multicast stays off (the lent machines' rule; values already set are kept)
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0} TORCH_SYMM_MEM_DISABLE_MULTICAST=${TORCH_SYMM_MEM_DISABLE_MULTICAST:-1}
export NVSHMEM_DISABLE_NVLS=${NVSHMEM_DISABLE_NVLS:-1}
mkdir -p "$WORK"

# step NAME CAP COMMAND...: COMMAND under `timeout` of CAP seconds or what the budget has left, whichever
# is less; its output in $WORK/log_NAME.txt, its tail and time printed.
step() {
  local name=$1 cap=$2; shift 2
  local left=$((DEADLINE - SECONDS)) t0=$SECONDS
  local limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 15 ]; then echo "STEP $name skipped: budget spent"; return 1; fi
  timeout -k 5 "$limit" "$@" > "$WORK/log_$name.txt" 2>&1
  local rc=$?
  grep -v -i warn "$WORK/log_$name.txt" | tail -n 6
  echo "STEP $name rc=$rc $((SECONDS - t0)) s (limit $limit s)"
  return $rc
}

nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null
echo "devices: $DEVICES ($ACCELERATOR), budget ${BUDGET_S:-380} s"
if [ "${INSTALL:-1}" = 1 ]; then
  step install 90 bash -c "$PY -m pip install -q --no-index --find-links .gpu_wheels --no-deps diffusers libigl \
    && $PY -m pip install -q --no-index --find-links .gpu_wheels trimesh==5.2.0 mlflow-skinny==3.17.2 sqlalchemy alembic"
fi
$PY -c 'import torch, lightning; print("torch", torch.__version__, "lightning", lightning.__version__)'

COMMON=(--devices "$DEVICES" --accelerator "$ACCELERATOR" --work "$WORK")
# the overfit stage reads data/samples (the sample stage reuses shards already there)
step sample 100 bash -c "cd '$PROJECT' && exec $PY '$PWD/pipelines/sample.py'"
SAMPLED=$?
# shellcheck disable=SC2086  # DIFFUSION_ARGS: extra words on purpose
step diffusion_throughput 110 $PY $BENCH diffusion --measure throughput "${COMMON[@]}" --timeout 70 \
  ${DIFFUSION_ARGS:-}
if [ $SAMPLED = 0 ]; then
  step overfit 150 $PY $BENCH overfit "${COMMON[@]}" --project "$PROJECT" --timeout 100
fi
# shellcheck disable=SC2086
step diffusion_parity 110 $PY $BENCH diffusion --measure parity "${COMMON[@]}" --timeout 70 ${DIFFUSION_ARGS:-}

timeout -k 5 20 $PY $BENCH report --work "$WORK" | tail -n 1
NAME=multigpu_$([ "$ACCELERATOR" = cpu ] && echo cpu || echo cuda)
cp "benchmarks/results/$NAME.json" "$OUT"/
ls "$OUT" "$WORK"
