#!/usr/bin/env bash
# Two GPUs, one queue (issue 17) on a bare 2-GPU CUDA box with no network (nvidia-h200-x2).
#   bench/two_gpu_run.sh OUT_DIR [extra bench/two_gpu.py flags]
# Expects, beside the repository, what bench/gpu_run.sh expects: .whl/, .carry/bin/redis-server
# with .carry/lib/, .carry/sd15-skeleton/. About 4-5 min: both workers compile cold at once.
set -euo pipefail
OUT=${1:?usage: bench/two_gpu_run.sh OUT_DIR}; shift
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
source bench/carry_setup.sh
python3 bench/two_gpu.py --model /tmp/sd15-random --redis-url "$REDIS_URL" --out "$OUT" "$@" \
    2>&1 | tee "$OUT/two_gpu.log"
