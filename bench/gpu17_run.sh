#!/usr/bin/env bash
# Issue 17's whole GPU run, one command, on a bare 2-GPU box with no network (nvidia-h200-x2):
#   bench/gpu17_run.sh OUT_DIR
# 1. at once, each on its own GPU and half the CPU cores (as the 16-core single-GPU boxes of
#    earlier runs):  GPU 1  plain-compiled (UNet, then UNet + VAE decode)        ~3.5 min
#                    GPU 0  cold-warm (cold start, warm start, worker figures),
#                           then leak (1000 jobs at 10 steps on the warm worker)  ~5 min
#                    GPU 1  then preview_bench.py: live previews on/off, SD 1.5 eager ~1 min
# 2. bench/two_gpu.py on both GPUs, warm from step 1's compile cache              ~2.5 min
# 3. bench/gpu17_summary.py: the side-by-side table, OUT/summary.json
# Setup (wheels, redis, model) ~0.5 min; about 8-8.5 min in all. Each step writes its JSON as
# it goes and a failing phase is logged and skipped: what ran still reports.
set -uo pipefail
OUT=${1:?usage: bench/gpu17_run.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUT/plain" "$OUT/single" "$OUT/two-gpu"
OUT=$(cd "$OUT" && pwd)
set -e
source bench/carry_setup.sh
set +e
pin() {  # pin a process to half of the cores when there are enough for two halves
    local cores
    cores=$(nproc)
    if command -v taskset >/dev/null && [ "$cores" -ge 8 ]; then
        if [ "$1" = 0 ]; then echo "taskset -c 0-$((cores / 2 - 1))"
        else echo "taskset -c $((cores / 2))-$((cores - 1))"; fi
    fi
}
BENCH=(bench/gpu_bench.py --model /tmp/sd15-random --redis-url "$REDIS_URL")
# preview_bench.py starts its own redis-server (producer/local_redis.py, found on PATH): a
# wrapper gives it the carried libraries, as carry_setup.sh does for the shared one.
mkdir -p /tmp/nightshift-bin
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/.carry/lib exec %s/.carry/bin/redis-server "$@"\n' \
    "$PWD" "$PWD" >/tmp/nightshift-bin/redis-server
chmod +x /tmp/nightshift-bin/redis-server
(
    CUDA_VISIBLE_DEVICES=1 $(pin 1) python3 "${BENCH[@]}" --out "$OUT/plain" \
        --phases plain-compiled --plain-compile-vae >"$OUT/plain/bench.log" 2>&1
    # Then, on the same GPU while GPU 0 runs the leak: what live previews cost SD 1.5 (eager).
    PATH=/tmp/nightshift-bin:$PATH CUDA_VISIBLE_DEVICES=1 $(pin 1) python3 bench/preview_bench.py \
        --model /tmp/sd15-random --device cuda --side 512 --steps 30 --jobs 6 \
        --out "$OUT/plain/preview.json" >"$OUT/plain/preview.log" 2>&1
) &
PLAIN=$!
CUDA_VISIBLE_DEVICES=0 $(pin 0) python3 "${BENCH[@]}" --out "$OUT/single" \
    --phases cold-warm,leak --leak-jobs 1000 --leak-steps 10 2>&1 | tee "$OUT/single/bench.log"
wait "$PLAIN"
tail -n 20 "$OUT/plain/bench.log"
python3 bench/two_gpu.py --model /tmp/sd15-random --redis-url "$REDIS_URL" --out "$OUT/two-gpu" \
    --compile-cache "$OUT/single/compile-cache" 2>&1 | tee "$OUT/two-gpu/two_gpu.log"
python3 bench/gpu17_summary.py "$OUT"
