#!/usr/bin/env bash
# The wheels a lent GPU box lacks, for bench/*_run.sh to install with --no-index: that box has
# torch, transformers, peft, numpy, Pillow, PyYAML, psutil, click, jinja2, but not Celery and
# its dependencies, pydantic's, diffusers or dynamicprompts, and runs a different Python.
#   bench/carry_wheels.sh [PYTHON_VERSION]      (default 3.12: the lent H200 boxes, 2026-11)
# Writes .whl/ beside bench/ (ignored by git: keep `.whl/` in .git/info/exclude) from the
# package index pip is configured with; pass the directory to `run`'s carry with .carry/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-3.12}
rm -rf .whl && mkdir .whl
pip download -q --no-deps --only-binary=:all: --python-version "$PY" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any -d .whl \
    diffusers==0.42.1 dynamicprompts==0.31.0 \
    pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3 python-dotenv \
    typing-inspection annotated-types \
    celery==5.7.0 kombu==5.7.0 billiard vine amqp redis==8.1.0 tzlocal tzdata \
    click-didyoumean click-repl click-plugins prompt_toolkit wcwidth importlib_metadata zipp \
    2>&1 | grep -v "^WARNING: Location" || true
ls .whl
