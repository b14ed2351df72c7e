#!/usr/bin/env bash
# The models benchmark (issue 12) on a bare CUDA box with no network: install the carried
# wheels (unless already importable), start a carried redis-server, write the random-weight
# SDXL and SD 1.5 models, run bench/models_bench.py.
#   bench/models_run.sh OUT_DIR [extra models_bench.py flags]
# Expects, beside the repository: .whl/ (wheels of what the box lacks), .carry/bin/redis-server
# with .carry/lib/, .carry/sdxl-skeleton/ and .carry/sd15-skeleton/ (configs, no weights).
set -euo pipefail
OUT=${1:?usage: bench/models_run.sh OUT_DIR}; shift
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
if ! python3 -c "import diffusers, celery, pydantic_settings" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=$PWD/.carry/lib:${LD_LIBRARY_PATH:-}
chmod +x .carry/bin/redis-server
.carry/bin/redis-server --port 6399 --save "" --appendonly no --daemonize yes \
    --logfile "$OUT/redis.log" --pidfile /tmp/nightshift-bench-redis.pid
trap 'kill "$(cat /tmp/nightshift-bench-redis.pid)" 2>/dev/null || true' EXIT
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m pip list 2>/dev/null | grep -iE '^(torch|diffusers|transformers|celery|kombu|redis) ' \
    | tee -a "$OUT/gpu.txt"
python3 bench/sdxl_random.py .carry/sdxl-skeleton /tmp/sdxl-random --device cuda
python3 bench/sd15_random.py .carry/sd15-skeleton /tmp/sd15-random --device cuda
python3 bench/models_bench.py --sdxl /tmp/sdxl-random --sd15 /tmp/sd15-random \
    --redis-url redis://127.0.0.1:6399/0 --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log"
