#!/usr/bin/env bash
# The whole GPU benchmark on a bare CUDA box with no network: install the carried wheels,
# start a carried redis-server, write the random-weight SD 1.5 model, run every phase.
#   bench/gpu_run.sh OUT_DIR [extra gpu_bench.py flags]
# Expects, beside the repository: .whl/ (wheels of what the box lacks: bench/carry_wheels.sh),
# .carry/bin/redis-server
# with .carry/lib/ (its less common libraries) and .carry/sd15-skeleton/ (configs, no weights).
set -euo pipefail
OUT=${1:?usage: bench/gpu_run.sh OUT_DIR}; shift
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
chmod +x .carry/bin/redis-server
# Its libraries for redis-server alone: torch must keep the system libstdc++.
LD_LIBRARY_PATH=$PWD/.carry/lib .carry/bin/redis-server --port 6399 --save "" --appendonly no --daemonize yes \
    --logfile "$OUT/redis.log" --pidfile /tmp/nightshift-bench-redis.pid
trap 'kill "$(cat /tmp/nightshift-bench-redis.pid)" 2>/dev/null || true' EXIT
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 bench/sd15_random.py .carry/sd15-skeleton /tmp/sd15-random --device cuda
python3 bench/gpu_bench.py --model /tmp/sd15-random --redis-url redis://127.0.0.1:6399/0 \
    --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log"
