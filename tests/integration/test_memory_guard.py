"""The memory guard: empty caches when over budget, recycle the worker process if still over.

The guard tests fake the accelerator's memory readings (there is no Apple GPU here): the
probe's `accelerator_mb` returns what the test says. Redis and the worker are real. The
budgets and the MPS environment, which need neither, are tests/unit/test_memory_budgets.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from config import keys as names
from config.records import JobRecord, JobStatus
from config.schema import new_job
from config.settings import Settings
from config.store import JobStore
from producer.client import Client
from worker.host.memory_guard import (
    EMPTIED,
    OK,
    RECYCLED,
    MemoryGuard,
    MemoryProbe,
)


class FakeMps:
    """Stands in for torch.mps: driver memory that empty_cache() brings down to `after`."""

    def __init__(self, before_mb: float, after_mb: float) -> None:
        self.now, self.after, self.emptied = before_mb, after_mb, 0

    def probe(self) -> MemoryProbe:
        return MemoryProbe("mps", 0.0, lambda: self.now, self.empty)

    def empty(self) -> None:
        self.emptied += 1
        self.now = self.after


def stored_job(settings: Settings) -> tuple[JobStore, str]:
    store = JobStore.from_settings(settings)
    spec = new_job("guarded", settings, steps=2, width=64, height=64)
    store.create(JobRecord(spec=spec, created_at=spec.created_at))
    return store, spec.id


def metric(settings: Settings, action: str) -> float:
    r = redis.Redis.from_url(settings.redis_url)
    return float(r.hget(names.JOB_METRICS, f"memory_events_total:{action}") or 0)


def test_under_budget_the_guard_only_records_the_readings(settings: Settings) -> None:
    store, job_id = stored_job(settings)
    mps = FakeMps(before_mb=900, after_mb=900)
    guard = MemoryGuard(store, "stats", mps.probe(), {"mps": 1000.0})

    assert guard.after_job(job_id) == OK
    assert mps.emptied == 0
    render = store.get(job_id).render
    assert render.memory_action == OK and render.memory_mb["mps"] == 900
    assert metric(settings, EMPTIED) == metric(settings, RECYCLED) == 0


def test_over_budget_emptying_the_mps_cache_is_enough(settings: Settings) -> None:
    store, job_id = stored_job(settings)
    mps = FakeMps(before_mb=5000, after_mb=800)
    guard = MemoryGuard(store, "stats", mps.probe(), {"mps": 1000.0})

    assert guard.after_job(job_id) == EMPTIED
    assert mps.emptied == 1
    assert store.get(job_id).render.memory_mb["mps"] == 800
    assert metric(settings, EMPTIED) == 1
    assert store.redis.hget("stats", "memory_emptied_cache") == "1"


def test_still_over_budget_after_emptying_means_recycle(settings: Settings) -> None:
    store, job_id = stored_job(settings)
    mps = FakeMps(before_mb=5000, after_mb=4800)
    guard = MemoryGuard(store, "stats", mps.probe(), {"mps": 1000.0})

    assert guard.after_job(job_id) == RECYCLED
    assert store.get(job_id).render.memory_action == RECYCLED
    assert metric(settings, RECYCLED) == 1
    assert metric(settings, EMPTIED) == 0


def wait_for_memory_action(client: Client, job_id: str, timeout_s: float = 60.0) -> JobRecord:
    """The guard runs right after the task body, so the verdict may land just after SUCCEEDED."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = client.store.get(job_id)
        if record.render.memory_action:
            return record
        time.sleep(0.05)
    raise AssertionError(f"no memory verdict recorded for {job_id}")


def test_a_worker_over_its_rss_budget_is_recycled_after_the_job(
    settings: Settings, start_worker: Callable[..., Any]
) -> None:
    tight = settings.model_copy(update={"rss_budget_mb": 1})  # any real process is over this
    worker = start_worker(settings_=tight)
    client = Client(tight)

    first = client.submit("before recycling", seed=1, steps=2, width=64, height=64).wait(180)
    first = wait_for_memory_action(client, first.id)
    second = client.submit("after recycling", seed=2, steps=2, width=64, height=64).wait(300)

    assert first.status is JobStatus.SUCCEEDED and second.status is JobStatus.SUCCEEDED
    assert first.render.memory_action == RECYCLED
    assert first.attempts == 1  # acknowledged before the process went: not redelivered
    assert second.render.pid != first.render.pid
    r = redis.Redis.from_url(tight.redis_url, decode_responses=True)
    old = r.hgetall(names.worker_key(first.render.worker, first.render.pid))
    new = r.hgetall(names.worker_key(second.render.worker, second.render.pid))
    assert old["memory_recycled"] == "1"
    assert new["loads"] == "1" and new["warmups"] == "1"  # the fresh child warmed again
    assert metric(tight, RECYCLED) >= 1
    assert worker.process.poll() is None  # only the child went; the worker stays up


def test_within_budget_the_same_process_renders_job_after_job(client: Client, worker: Any) -> None:
    a = client.submit("one", seed=1, steps=2, width=64, height=64).wait(180)
    a = wait_for_memory_action(client, a.id)
    b = client.submit("two", seed=2, steps=2, width=64, height=64).wait(180)

    assert a.render.memory_action == OK
    assert "rss" in a.render.memory_mb and "swap_growth" in a.render.memory_mb
    assert a.render.pid == b.render.pid
