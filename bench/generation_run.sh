#!/usr/bin/env bash
# Issue 13's GPU figures on a bare CUDA box with no network: img2img against plain diffusers,
# the hires fix, and what a LoRA costs between jobs.
#   bench/generation_run.sh OUT_DIR
# Expects, beside the repository: .whl/ (wheels of what the box lacks: diffusers, pydantic,
# pydantic-settings) and .carry/sd15-skeleton/ (SD 1.5's configs, no weights).
set -euo pipefail
OUT=${1:?usage: bench/generation_run.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
if ! python3 -c "import diffusers, pydantic_settings" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m pip list 2>/dev/null | grep -iE '^(torch|diffusers|transformers|peft) ' | tee -a "$OUT/gpu.txt"
python3 bench/generation_bench.py --skeleton .carry/sd15-skeleton --device cuda --images 8 \
    2>&1 | tee "$OUT/generation.log"
python3 bench/lora_bench.py --skeleton .carry/sd15-skeleton --device cuda --renders 6 \
    --out "$OUT/lora.json" 2>&1 | tee "$OUT/lora.log"
