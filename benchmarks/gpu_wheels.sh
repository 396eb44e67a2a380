#!/bin/bash
# Downloads (here, with internet) the Python 3.12 x86-64 wheels that the offline GPU machine lacks, into DEST
# (default .gpu_wheels, which the lead's checkout git-ignores and carries), and prints their total size: the whole
# working tree that travels to the GPU machine must stay under 64 MiB.
#     bash benchmarks/gpu_wheels.sh [--dest DIR] [--no-pandas] [--dvc]
# Tiers: benchmarks/gpu_wheels/core.txt (always: MLflow, great-expectations, diffusers, libigl, trimesh, manifold3d,
# typer; ~58 MiB with pandas) and dvc.txt (--dvc, ~10.8 MiB). Both fit only without pandas (--no-pandas), i.e. where
# `bash benchmarks/gpu_setup.sh --probe` on the GPU machine found pandas in the image. Without DVC the run uses
# the stage scripts in dvc.yaml's order (benchmarks/paper_scale_run.py).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.gpu_wheels PANDAS=1 DVC=0
while [ $# -gt 0 ]; do
  case $1 in
    --dest) DEST=$2; shift ;;
    --no-pandas) PANDAS=0 ;;
    --dvc) DVC=1 ;;
    *) echo "unknown option $1 (expected --dest DIR, --no-pandas, --dvc)" >&2; exit 2 ;;
  esac
  shift
done
PIP=${PIP:-python3 -m pip}
REQS=$(mktemp)
trap 'rm -f "$REQS"' EXIT
grep -v '^#' benchmarks/gpu_wheels/core.txt > "$REQS"
[ "$DVC" = 1 ] && grep -v '^#' benchmarks/gpu_wheels/dvc.txt | grep -v '^antlr4-python3-runtime' >> "$REQS"
[ "$PANDAS" = 0 ] && sed -i '/^pandas==/d' "$REQS"
mkdir -p "$DEST"
PLATFORMS=""
for p in manylinux1 manylinux2014 manylinux_2_5 manylinux_2_12 manylinux_2_17 manylinux_2_24 manylinux_2_26 \
  manylinux_2_27 manylinux_2_28 manylinux_2_34; do PLATFORMS="$PLATFORMS --platform ${p}_x86_64"; done
# shellcheck disable=SC2086
$PIP download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS \
  --platform any -d "$DEST" -r "$REQS"
if [ "$DVC" = 1 ]; then  # an sdist only (pure Python): built into a py3 wheel here
  $PIP wheel --quiet --no-deps -w "$DEST" "$(grep '^antlr4-python3-runtime' benchmarks/gpu_wheels/dvc.txt)"
fi
[ "$PANDAS" = 0 ] && rm -f "$DEST"/pandas-*.whl
echo "$(ls "$DEST"/*.whl | wc -l) wheels, $(du -cb "$DEST"/*.whl | tail -1 | awk '{printf "%.1f MiB", $1 / 1048576}') in $DEST"
