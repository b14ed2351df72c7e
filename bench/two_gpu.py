"""Two GPUs, one queue (issue 17): does a second worker double the throughput, and what does
Redis pay per job?

Two fast-path workers (CUDA_VISIBLE_DEVICES=0 and =1, node names gpu0@ and gpu1@, their own
results and data folders, one shared compile cache folder) consume the same queue. Both
start at once (so their compiles overlap); then:
  both   --prompts jobs as group messages, both workers up: images/s from submit to the
         last finish; Redis's INFO commandstats and INFO cpu before and after: commands per
         job by command, Redis CPU seconds per 1000 jobs
  alone  gpu1 stopped, --alone-prompts more jobs on gpu0 only: images/s. Both workers were
         warmed before they reported ready, so measuring "both" first biases neither figure
then scaling = both / alone (target >= 1.9), the fleet size at which one Redis core is busy
all the time (1 / (Redis CPU s per job x jobs/s of one worker)), and a check that every job
rendered exactly once: its PNG files in both workers' folders, and `attempts` in its record.

The bench waits on the metrics hash's finished counter (one HGETALL per 0.5 s), not on
every record, so its own polling is a handful of Redis commands; they are counted and
reported with the rest.

    python bench/two_gpu.py --model /tmp/sd15-random --redis-url redis://127.0.0.1:6399/0 \\
        --out OUT [--prompts 512 --steps 30 --size 512 --compile-cache DIR]
    python bench/two_gpu.py --tiny --redis-url redis://127.0.0.1:6379/0 --out OUT  # CPU check
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_bench as gb  # bench/ is no package; it puts the repository on sys.path too
import issue17

QUEUE = "bench-two-gpu"
BENCH = Path("/tmp/nightshift-bench")


def main() -> None:
    args = parse_args()
    out: dict[str, Any] = {"env": gb.environment(args)}
    gb.RESULTS["two-gpu"] = out
    begin = time.perf_counter()
    try:
        run(args, out)
    except Exception as exc:  # whatever was measured before stays in the file
        out["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        out["phase_s"] = round(time.perf_counter() - begin, 1)
        (args.out / "two_gpu.json").write_text(json.dumps(out, indent=2))
        print(json.dumps({k: v for k, v in out.items() if k != "env"}, indent=2))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model")
    p.add_argument("--redis-url", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--prompts", type=int, default=512, help="jobs of the two-worker run")
    p.add_argument("--alone-prompts", type=int, help="jobs of the one-worker run (prompts/2)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--size", type=int, default=512)
    # Only the grouped size: these jobs all come as groups of 16 (halves a cold compile).
    p.add_argument("--group-sizes", default="16")
    p.add_argument("--compile-cache", type=Path, help="shared by both (default OUT/compile-cache)")
    p.add_argument("--tiny", action="store_true", help="the tiny model on the CPU: checks the code")
    args = p.parse_args()
    if args.tiny:
        from worker.render.tiny import write_tiny_model

        args.model = str(write_tiny_model(BENCH / "tiny-model"))
        args.device, args.size, args.steps, args.group_sizes = "cpu", 64, 2, "4"
        args.prompts = min(args.prompts, 16)
    elif not args.model:
        p.error("--model is required (or --tiny)")
    args.alone_prompts = args.alone_prompts or args.prompts // 2
    args.compile_cache = (args.compile_cache or args.out / "compile-cache").resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    args.phases, args.dtype = "two-gpu", "float16"  # what gb.environment and the hooks read
    return args


def run(args: argparse.Namespace, out: dict[str, Any]) -> None:
    workers = [start(args, gpu) for gpu in (0, 1)]
    try:
        for w in workers:
            out[f"ready_{w.name}"] = issue17.ready_figures(w.wait_ready(timeout=600))
        before = redis_info(workers[0])
        out["both"] = render(args, workers[0], first=0, count=args.prompts)
        out["redis"] = redis_cost(before, redis_info(workers[0]), args.prompts)
        out["both"]["jobs_per_worker"] = jobs_per_worker(workers, out["both"].pop("records"))
        workers[1].stop()
        out["alone"] = render(args, workers[0], first=args.prompts, count=args.alone_prompts)
        out["alone"].pop("records")
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.stop()
    out["scaling"] = round(out["both"]["images_per_s"] / out["alone"]["images_per_s"], 3)
    per_worker = out["alone"]["images_per_s"]  # jobs/s: one image per job
    cpu_per_job = out["redis"]["cpu_s_per_1000_jobs"] / 1000
    out["redis"]["fleet_size_at_saturation"] = (
        round(1 / (cpu_per_job * per_worker), 1) if cpu_per_job else None
    )
    out["exactly_once"] = exactly_once(workers, args.prompts + args.alone_prompts)


def start(args: argparse.Namespace, gpu: int) -> gb.Worker:
    name = f"gpu{gpu}"
    for folder in ("data", "results"):  # the PNG count must see this run's files only
        shutil.rmtree(BENCH / f"{folder}-{name}", ignore_errors=True)
    settings = {
        "NIGHTSHIFT_QUEUES": QUEUE,
        "NIGHTSHIFT_DATA_DIR": str(BENCH / f"data-{name}"),
        "NIGHTSHIFT_RESULTS_DIR": str(BENCH / f"results-{name}"),
    }
    ours, torch_env = issue17.cache_env(args.compile_cache)
    env = torch_env | {"CUDA_VISIBLE_DEVICES": str(gpu)}
    return gb.Worker(args, name, True, ours | settings, env)


def render(args: argparse.Namespace, w: gb.Worker, first: int, count: int) -> dict[str, Any]:
    from producer.client import submit_grouped

    specs = [w.spec(first + i) for i in range(count)]
    base = issue17.finished_count(w.client)
    start = time.time()
    submit_grouped(w.client, specs)
    issue17.wait_finished(w.client, base + count, timeout=60 + 0.5 * count)
    records = [w.client.store.get(s.id) for s in specs]
    end = max(r.finished_at or 0 for r in records)
    return {
        "jobs": count,
        "ok": sum(r.status.value == "succeeded" for r in records),
        "images_per_s": round(count / (end - start), 3),
        "seconds": round(end - start, 2),
        "records": records,
    }


def redis_info(w: gb.Worker) -> dict[str, Any]:
    redis = w.client.store.redis
    cpu = redis.info("cpu")
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in redis.info("commandstats").items()}
    return {"cpu_s": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), "calls": calls}


def redis_cost(before: dict[str, Any], after: dict[str, Any], jobs: int) -> dict[str, Any]:
    calls = Counter(after["calls"])
    calls.subtract(before["calls"])
    by_command = {k: round(v / jobs, 2) for k, v in calls.most_common() if v > 0}
    return {
        "cpu_s": round(after["cpu_s"] - before["cpu_s"], 3),
        "cpu_s_per_1000_jobs": round((after["cpu_s"] - before["cpu_s"]) / jobs * 1000, 3),
        "commands_per_job": round(sum(v for v in calls.values() if v > 0) / jobs, 1),
        "commands_per_job_by_command": by_command,
        "note": "the bench's own polling: the hgetall and info calls (a few per second)",
    }


def jobs_per_worker(workers: list[gb.Worker], records: list[Any]) -> dict[str, int]:
    by_pid = Counter(r.render.pid for r in records)
    names = {pid: w.name for w in workers for pid in by_pid if w.owns(pid)}
    return {names.get(pid, str(pid)): n for pid, n in by_pid.items()}


def exactly_once(workers: list[gb.Worker], expected: int) -> dict[str, Any]:
    """PNG files per job id over both workers' folders, and each record's attempts."""
    pngs = Counter(
        path.name.rsplit("-", 1)[0]
        for w in workers
        for path in w.settings.results_path.rglob("*.png")
    )
    attempts: Counter[int] = Counter()
    for w in workers[:1]:
        for job_id in pngs:
            attempts[w.client.store.get(job_id).attempts] += 1
    twice = sorted(j for j, n in pngs.items() if n != 1)
    return {
        "jobs_with_png": len(pngs),
        "expected": expected,
        "jobs_not_one_png": len(twice),
        "examples": twice[:5],
        "attempts": {str(k): v for k, v in sorted(attempts.items())},
        "ok": len(pngs) == expected and not twice and set(attempts) == {1},
    }


if __name__ == "__main__":
    main()
