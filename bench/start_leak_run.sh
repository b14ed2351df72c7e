#!/usr/bin/env bash
# Issue 17's start-up, leak and CPU-overhead figures on a bare 1-GPU box with no network
# (nvidia-h200, 16 cores), one command:
#   [LEAK_JOBS=1000] bench/start_leak_run.sh OUT_DIR [BASE_TREE]
# GPU 0, cores 0-13: a fast-path worker started with an empty compile cache (cold), then a
#   second one on that cache (warm; its start broken down: boot, load, each warm-up round),
#   the warm one's first/tenth job, one at a time, grouped, then 1,000 jobs at 10 steps with
#   per-job CUDA and RSS samples (bench/issue17.py cold-warm,leak)                  ~6 min
# Meanwhile on cores 14-15 (two cores, as the development VM), CUDA hidden: the queue's
#   per-job overhead (bench/cpu_queue.py --phases), alternating this tree and BASE_TREE (an
#   older checkout, e.g. `git archive` of the last commit, for an A/B) when given.
# Setup as bench/gpu17_run.sh (bench/carry_setup.sh: wheels, redis-server, the model).
set -uo pipefail
OUT=${1:?usage: bench/start_leak_run.sh OUT_DIR [BASE_TREE]}
BASE=${2:-}
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
HERE=$PWD
(
    export PATH=/tmp/nightshift-bin:$PATH CUDA_VISIBLE_DEVICES=""
    for round in 1 2; do
        for tree in "$HERE" ${BASE:+"$BASE"}; do
            name=$([ "$tree" = "$HERE" ] && echo new || echo base)
            (cd "$tree" && PYTHONPATH=/tmp/site:$tree taskset -c $((last - 1))-$last \
                python3 bench/cpu_queue.py --jobs 200 --enqueue 1000 --phases \
                --out "$OUT/cpu/queue-$name-$round.json" >"$OUT/cpu/queue-$name-$round.log" 2>&1)
        done
    done
) &
CPU=$!
CUDA_VISIBLE_DEVICES=0 taskset -c 0-$((last - 2)) python3 bench/gpu_bench.py \
    --model /tmp/sd15-random --redis-url "$REDIS_URL" --out "$OUT/gpu" \
    --phases cold-warm,leak --steady-jobs 32 --leak-jobs "${LEAK_JOBS:-1000}" --leak-steps 10 \
    2>&1 | tee "$OUT/gpu/bench.log"
wait "$CPU"
grep -h -m1 "\"median_ms\"" "$OUT"/cpu/queue-*.json
