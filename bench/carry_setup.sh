# Sourced by bench/two_gpu_run.sh and bench/gpu17_run.sh (the same steps as bench/gpu_run.sh):
# on a bare CUDA box with no network, install the carried wheels, start the carried
# redis-server on port 6399 (stopped when the calling script exits), write the
# random-weight SD 1.5 model to /tmp/sd15-random. Expects OUT set, the cwd the repository.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
chmod +x .carry/bin/redis-server
# Its libraries for redis-server alone: torch must keep the system libstdc++.
LD_LIBRARY_PATH=$PWD/.carry/lib .carry/bin/redis-server --port 6399 --save "" --appendonly no --daemonize yes \
    --logfile "$OUT/redis.log" --pidfile /tmp/nightshift-bench-redis.pid
trap 'kill "$(cat /tmp/nightshift-bench-redis.pid)" 2>/dev/null || true' EXIT
REDIS_URL=redis://127.0.0.1:6399/0
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader \
    | tee "$OUT/gpu.txt"
python3 bench/sd15_random.py .carry/sd15-skeleton /tmp/sd15-random --device cuda
