"""CPU benchmarks of the queue itself, with the tiny model (no GPU needed).

overhead: per-job cost of Redis + Celery + records, everything except the render and
          the PNG encoding. A real worker renders N queued jobs; for each job after the
          first, overhead = (its finish - the previous finish) - its render_s (measured
          inside the worker) - the median PNG save time (measured here, same image size;
          0 when the worker writes PNGs behind the task, NIGHTSHIFT_WRITE_BEHIND=true, off on
          the CPU by default: then the PNG overlaps the next render and is not between jobs;
          period_ms and render_ms show where it went).
          With --phases the worker also loads bench/phases/ (timestamps from Celery signals
          and kombu's ack) and the overhead is split into phases, median and p99 each.
enqueue:  10,000 jobs from one process with Client.submit_many (one pipelined pass),
          and 1,000 with Client.submit in a loop for comparison.

    python bench/cpu_queue.py [--jobs 200] [--enqueue 10000] [--phases] [--out bench-cpu.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import keys as names  # noqa: E402
from config.schema import new_job  # noqa: E402
from config.settings import Settings  # noqa: E402
from producer.client import Client  # noqa: E402
from producer.local_redis import LocalRedis  # noqa: E402

SIDE, STEPS = 64, 2


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p99_ms": round(pct(ms, 0.99), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
        "n": len(ms),
    }


def png_save_s(settings: Settings) -> float:
    """Median time to save one tiny-model image as the worker does (metadata included)."""
    from worker.jobs.outputs import png_info, save_png
    from worker.render.device import HostFacts, plan_device
    from worker.render.pipeline import load_pipeline
    from worker.render.renderer import Renderer

    plan = plan_device(settings, HostFacts.detect())
    renderer = Renderer(load_pipeline(settings, plan), plan, settings.model)
    spec = new_job("png timing", settings, seed=1, width=SIDE, height=SIDE, steps=STEPS)
    result = renderer.render(spec)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(50):
            t = time.perf_counter()
            save_png(result.images[0], Path(tmp) / f"{i}.png", png_info(spec, 1, "x", "tiny"))
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def overhead(settings: Settings, jobs: int, phases: bool) -> dict[str, Any]:
    client = Client(settings)
    env = os.environ | settings.to_env() | {"PYTHONWARNINGS": "ignore"}
    phases_log = settings.data_path / "phases.log"
    if phases:
        # In front of the path the bench was given (a bare GPU box's carried packages).
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "bench" / "phases"), env.get("PYTHONPATH")])
        )
        env["NIGHTSHIFT_PHASES_LOG"] = str(phases_log)
    log = open(settings.data_path / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "worker", "--loglevel", "WARNING"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_ready(client, worker)
        except RuntimeError:
            log.flush()
            print((settings.data_path / "worker.log").read_text()[-3000:], file=sys.stderr)
            raise
        specs = [
            new_job(f"job {i}", settings, seed=i, width=SIDE, height=SIDE, steps=STEPS)
            for i in range(jobs)
        ]
        client.submit_many(specs)
        records = wait_done(client, [s.id for s in specs])
    finally:
        worker.terminate()
        worker.wait(60)
        log.close()
    # Written behind the task (settings.write_behind), the PNG overlaps the next render and
    # is not in the interval between jobs; written in the task, it is.
    behind = settings.write_behind is True  # auto is off on the CPU
    png = 0.0 if behind else png_save_s(settings)
    records.sort(key=lambda r: r.finished_at)
    per_job = [
        (b.finished_at - a.finished_at) - b.render_s - png for a, b in itertools.pairwise(records)
    ]
    # The whole period a job takes, and its render: written behind the task on this CPU, the
    # PNG and the records compete with the next render for the same cores.
    periods = [b.finished_at - a.finished_at for a, b in itertools.pairwise(records)]
    out: dict[str, Any] = {
        "write_behind": behind,
        "png_save_median_ms": round(png * 1000, 2),
        **summary_ms(per_job),
        "period_ms": summary_ms(periods),
        "render_ms": summary_ms([r.render_s for r in records]),
    }
    if phases:
        out["phases"] = split_phases(records, phases_log, png)
    return out


PHASES = [  # (name, from, to): marks from bench/phases, started from the record
    ("previous ack done -> message received (next BRPOP)", "prev_acked", "received"),
    ("received -> task starts in the child (pool hand-off)", "received", "prerun"),
    ("task start -> record says started (decode, start_job)", "prerun", "started"),
    ("the task after start, besides render (and PNG in the task)", "started", "postrun"),
    ("postrun -> ack (worker hooks, result to parent, events)", "postrun", "ack"),
    ("ack (kombu)", "ack", "acked"),
]


def split_phases(records: list[Any], log: Path, png_s: float) -> dict[str, dict[str, float]]:
    marks: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        at, tag, task_id = line.split()
        marks.setdefault(task_id, {})[tag] = float(at)
    spans: dict[str, list[float]] = {name: [] for name, _, _ in PHASES}
    for a, b in itertools.pairwise(records):
        m = marks.get(b.id, {}) | {"started": b.started_at}
        m["prev_acked"] = marks.get(a.id, {}).get("acked", 0.0)
        if not {"received", "prerun", "postrun", "ack", "acked"} <= m.keys() or not m["prev_acked"]:
            continue
        for name, start, end in PHASES:
            span = m[end] - m[start]
            if start == "started":  # the render and the PNG are not overhead
                span -= b.render_s + png_s
            spans[name].append(span)
    return {name: summary_ms(values) for name, values in spans.items() if values}


def wait_ready(client: Client, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("worker exited before it was ready")
        if client.store.redis.zcard(names.WORKERS_INDEX):
            return
        time.sleep(0.1)
    raise TimeoutError("worker not ready")


def wait_done(client: Client, ids: list[str]) -> list[Any]:
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        records = [client.store.get(i) for i in ids]
        if all(r.status.finished for r in records):
            return records
        time.sleep(0.5)
    raise TimeoutError("jobs not done")


def enqueue(settings: Settings, count: int) -> dict[str, Any]:
    client = Client(settings)
    out: dict[str, Any] = {}
    for label, n in (("submit_many", count), ("submit_loop", count // 10)):
        client.store.redis.flushdb()
        t = time.perf_counter()
        if label == "submit_many":
            specs = [new_job(f"p {i}", settings, seed=i) for i in range(n)]
            client.submit_many(specs)
        else:
            for i in range(n):
                client.submit(f"p {i}", seed=i)
        elapsed = time.perf_counter() - t
        out[label] = {"jobs": n, "seconds": round(elapsed, 3), "jobs_per_s": round(n / elapsed)}
        print(label, out[label], flush=True)
    client.store.redis.flushdb()  # the overhead run must not inherit these jobs
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--enqueue", type=int, default=10_000)
    parser.add_argument("--phases", action="store_true", help="split the overhead into phases")
    parser.add_argument("--out", type=Path, default=Path("bench-cpu.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalRedis(Path(tmp) / "redis") as redis_server:
        settings = Settings(
            redis_url=redis_server.url,
            model="tiny",
            device="cpu",
            data_dir=Path(tmp),
            queues="bench-cpu",
            safety_checker=False,
        )
        result = {
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
            "python": platform.python_version(),
            "enqueue": enqueue(settings, args.enqueue),
            "overhead": overhead(settings, args.jobs, args.phases),
        }
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
