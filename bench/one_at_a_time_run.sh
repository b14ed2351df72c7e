#!/usr/bin/env bash
# Issue 17's one-at-a-time figure with each PNG written behind its task, on a bare 1-GPU box
# with no network (nvidia-h200, 16 cores), one command:
#   bench/one_at_a_time_run.sh OUT_DIR
# GPU 0, cores 0-13, one after the other:  plain-compiled (the anchor)            ~3.5 min
#                                          the fast worker (cold start, one at a time,
#                                          steady, grouped, a short leak check)   ~5 min
# Meanwhile on cores 14-15 (two cores, as the development VM), CUDA hidden: live previews on
# the CPU (tiny model) and the queue's per-job overhead (bench/cpu_queue.py --phases).
# Setup as bench/gpu17_run.sh (bench/carry_setup.sh: wheels, redis-server, the model).
set -uo pipefail
OUT=${1:?usage: bench/one_at_a_time_run.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUT/gpu" "$OUT/cpu"
OUT=$(cd "$OUT" && pwd)
set -e
source bench/carry_setup.sh
set +e
mkdir -p /tmp/nightshift-bin  # LocalRedis finds redis-server on PATH: the carried one
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/.carry/lib exec %s/.carry/bin/redis-server "$@"\n' \
    "$PWD" "$PWD" >/tmp/nightshift-bin/redis-server
chmod +x /tmp/nightshift-bin/redis-server
last=$(($(nproc) - 1))
(
    export PATH=/tmp/nightshift-bin:$PATH CUDA_VISIBLE_DEVICES=""
    taskset -c $((last - 1))-$last python3 bench/preview_bench.py --jobs 12 --side 64 \
        --steps 100 --out "$OUT/cpu/preview.json" >"$OUT/cpu/preview.log" 2>&1
    taskset -c $((last - 1))-$last python3 bench/cpu_queue.py --jobs 200 --enqueue 10000 \
        --phases --out "$OUT/cpu/queue.json" >"$OUT/cpu/queue.log" 2>&1
) &
CPU=$!
CUDA_VISIBLE_DEVICES=0 taskset -c 0-$((last - 2)) python3 bench/gpu_bench.py \
    --model /tmp/sd15-random --redis-url "$REDIS_URL" --out "$OUT/gpu" \
    --phases plain-compiled,fast --steady-jobs 32 --leak-jobs 100 --leak-fit-from 20 \
    2>&1 | tee "$OUT/gpu/bench.log"
wait "$CPU"
tail -n 30 "$OUT/cpu/preview.log" "$OUT/cpu/queue.log"
