"""Load: many jobs through one real worker with the tiny model, each rendered exactly once.

The worker child's resident memory is read (psutil) when job 100 and the last job are done;
it may grow by less than 100 MB in between. Count, wall time and memory are printed.

The default run (CI, `scripts/test`) is the issue's full 5,000 jobs: about 3.5 minutes on
the 2-core CI machine (about 42 ms a job, 64x64 and one step). `LOAD_TEST_JOBS=N` changes
the count for a quicker local run.
"""

from __future__ import annotations

import os
import time

import psutil
import pytest
import redis

from config import keys as names
from config.records import JobStatus
from config.schema import new_job
from config.settings import Settings
from producer.client import Client

JOBS = int(os.environ.get("LOAD_TEST_JOBS", "5000"))
BASELINE_AT = min(100, JOBS // 2)
MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MB


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_5000_jobs_all_succeed_exactly_once_and_memory_stays_flat(
    client: Client, worker, settings: Settings
) -> None:
    specs = [new_job(f"load {i}", settings, steps=1, width=64, height=64) for i in range(JOBS)]
    began = time.monotonic()
    assert len(client.submit_many(specs)) == JOBS
    enqueued_s = time.monotonic() - began
    r = redis.Redis.from_url(settings.redis_url)
    done = names.status_index(JobStatus.SUCCEEDED.value)
    failed = names.status_index(JobStatus.FAILED.value)

    def wait_for(count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while r.zcard(done) < count:
            assert r.zcard(failed) == 0, "a load-test job failed"
            assert time.monotonic() < deadline, f"only {r.zcard(done)} of {count} jobs done"
            time.sleep(0.5)

    (child,) = worker.child_pids()
    wait_for(BASELINE_AT, 600)
    at_baseline = time.monotonic()
    rss_baseline = rss_mb(child)
    wait_for(JOBS, 3000)
    wall_s = time.monotonic() - began
    rss_end = rss_mb(child)

    records = [client.store.get(s.id) for s in specs]
    per_job_ms = 1000 * (time.monotonic() - at_baseline) / max(JOBS - BASELINE_AT, 1)
    print(
        f"\nload: {JOBS} jobs, wall {wall_s:.1f} s (enqueue {enqueued_s:.1f} s), "
        f"{per_job_ms:.0f} ms/job; worker child RSS {rss_baseline:.0f} MB at job "
        f"{BASELINE_AT}, {rss_end:.0f} MB at job {JOBS}, growth {rss_end - rss_baseline:+.1f} MB"
    )
    assert worker.child_pids() == [child]  # one process did it all: growth is real growth
    assert all(rec.status is JobStatus.SUCCEEDED and rec.attempts == 1 for rec in records)
    pngs = list(settings.results_path.rglob("*.png"))
    assert len(pngs) == JOBS
    assert {p.name for p in pngs} == {f"{s.id}-00.png" for s in specs}
    assert rss_end - rss_baseline < 100
