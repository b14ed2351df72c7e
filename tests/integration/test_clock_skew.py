"""Clock skew between machines (issue 11): waits and expiries are measured on one clock.

A producer on one machine and a worker on another rarely agree on the time. Every date in
a job (created_at, expires_at, started_at, finished_at) is on the Redis server's clock, so
`--expires 1h` means an hour whoever's clock is wrong, and the queue wait is never negative.

The skew is simulated (a test cannot set the machine's clock): tests/integration/skewed_clock/
on a subprocess's PYTHONPATH shifts that process's time.time() by SKEWED_CLOCK_S seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from helpers import nightshift

from config import keys as names
from config.records import JobStatus
from config.settings import Settings
from producer.client import Client

SKEWED_CLOCK = str(Path(__file__).resolve().parent / "skewed_clock")
HOUR_S = 3600.0
SKEWS = pytest.mark.parametrize(
    "skew_s", [HOUR_S, -HOUR_S], ids=["an-hour-ahead", "an-hour-behind"]
)


def redis_now(settings: Settings) -> float:
    seconds, micros = redis.Redis.from_url(settings.redis_url).time()
    return seconds + micros / 1e6


@SKEWS
def test_a_producer_with_a_skewed_clock_stamps_its_job_on_the_redis_clock(
    skew_s: float, settings: Settings, client: Client
) -> None:
    before = redis_now(settings)
    out = nightshift(
        settings,
        *("submit", "a lighthouse", "--expires", "30m"),
        PYTHONPATH=SKEWED_CLOCK,
        SKEWED_CLOCK_S=str(skew_s),
    )
    after = redis_now(settings)
    assert out.returncode == 0, out.stderr

    spec = client.job(out.stdout.strip()).record().spec
    assert before - 1 <= spec.created_at <= after + 1
    assert spec.expires_at is not None
    assert before + 1800 - 1 <= spec.expires_at <= after + 1800 + 1


@pytest.mark.slow
@SKEWS
def test_a_worker_with_a_skewed_clock_neither_expires_a_job_early_nor_waits_negative(
    skew_s: float, settings: Settings, client: Client, start_worker
) -> None:
    worker = start_worker(PYTHONPATH=SKEWED_CLOCK, SKEWED_CLOCK_S=str(skew_s))
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    announced = dict(r.zrange(names.WORKERS_INDEX, 0, -1, withscores=True))
    # The skew is really in force in the worker: it announced itself at its own (wrong) time.
    assert all(abs(at - (time.time() + skew_s)) < 300 for at in announced.values()), announced

    job = client.submit("a lighthouse", steps=2, width=64, height=64, expires_at=time.time() + 1800)
    record = job.wait(timeout=120)

    assert record.status is JobStatus.SUCCEEDED, f"{record.error}\n{worker.tail()}"
    assert record.queue_wait_s is not None and 0 <= record.queue_wait_s < 60
    assert record.started_at is not None and record.finished_at is not None
    assert record.created_at <= record.started_at <= record.finished_at
    waited = float(r.hget(names.JOB_METRICS, "queue_wait_seconds") or 0)
    assert 0 <= waited < 60  # the Prometheus counter never goes down
