"""A worker that sleeps with a job (issue 11): the job is rendered again elsewhere, and the
sleeper, once awake, stops it without writing anything. The record belongs to one attempt.

A Mac that sleeps looks, to the other workers, exactly like a SIGSTOPped process: its lease
is not renewed, so another worker's sweep puts the message back and that worker starts the
job again. Both workers here are real `nightshift worker` processes with the tiny model; the
render is made slow (0.2 s a step) by tests/faultinject/, which also logs every render call,
one log per worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config import keys as names
from config.records import JobRecord, JobStatus
from config.settings import Settings
from producer.client import Client

FAULTINJECT = str(Path(__file__).resolve().parents[1] / "faultinject")
SLOW_JOB = {"width": 64, "height": 64, "steps": 40}  # 40 steps of 0.2 s: 8 s of rendering


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def short_leases(settings: Settings) -> Settings:
    """Leases that lapse two seconds after a worker stops renewing them, swept twice a second."""
    return settings.model_copy(
        update={"lease_ttl_s": 2.0, "recovery_interval_s": 0.5, "progress_interval_s": 0.2}
    )


@pytest.fixture
def announcements(short_leases: Settings) -> Iterator[Callable[[str], list[JobRecord]]]:
    """Subscribe to a job's channel (every record write is announced there); returns the list
    that collects the record as read right after each announcement."""
    client = redis.Redis.from_url(short_leases.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    seen: list[JobRecord] = []
    threads = []

    def note(message: dict[str, Any]) -> None:
        job_id = json.loads(message["data"])["id"]
        seen.append(JobRecord.from_json(client.get(names.job_key(job_id)) or b""))

    def listen(job_id: str) -> list[JobRecord]:
        pubsub.subscribe(**{names.job_channel(job_id): note})
        threads.append(pubsub.run_in_thread(sleep_time=0.05, daemon=True))
        return seen

    yield listen
    for thread in threads:
        thread.stop()
        thread.join(5)
    pubsub.close()
    client.close()


def freeze(worker: Any) -> list[int]:
    """SIGSTOP the worker's parent and its rendering child, as a Mac going to sleep would."""
    pids = [worker.process.pid, *worker.child_pids()]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def thaw(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@pytest.mark.slow
def test_a_worker_that_wakes_to_find_its_job_taken_over_stops_without_writing(
    short_leases: Settings, start_worker, announcements, tmp_path: Path
) -> None:
    client = Client(short_leases)
    logs = {name: tmp_path / name for name in ("one", "two")}
    workers = []
    for log in logs.values():
        log.mkdir()
        env = {"PYTHONPATH": FAULTINJECT, "FAULTINJECT_DIR": str(log)}
        workers.append(start_worker(wait=False, settings_=short_leases, **env))
    workers[1].wait_ready(count=2)

    job = client.submit("[slow] a lighthouse while the Mac sleeps", seed=11, **SLOW_JOB)
    seen = announcements(job.id)
    wait_until(lambda: job.record().progress.get("step", 0) >= 2, 120, "the first render")
    first = job.record()
    sleeper, other = workers if first.render.pid in workers[0].child_pids() else workers[::-1]
    assert first.render.pid in sleeper.child_pids() and first.attempts == 1

    frozen = freeze(sleeper)
    try:
        wait_until(lambda: job.record().attempts == 2, 60, "the other worker to take the job")
    finally:
        thaw(frozen)
    taken = job.record()
    assert taken.status is JobStatus.STARTED and taken.render.pid in other.child_pids()

    ended = f"nightshift.render[{job.id}] succeeded in"  # Celery's line: the task returned
    for worker in (sleeper, other):
        wait_until(lambda w=worker: ended in w.tail(200_000), 120, "both tasks to end")
    # The PNG is written behind the task (worker/jobs/writebehind.py): the record follows it.
    wait_until(lambda: job.record().status.finished, 60, "the record to say how it ended")

    assert_one_attempt(job.record(), taken, short_leases, seen)
    slept = sleeper.tail(200_000)
    assert f"job {job.id}: superseded by attempt 2 on " in slept
    assert "stopped without writing" in slept
    assert "'status': 'superseded'" in slept
    assert f"job {job.id}: wrote" not in slept
    assert f"job {job.id}: wrote" in other.tail(200_000)
    # Each worker rendered it once: the sleeper's render was cut short, not started again.
    assert [renders(log, job.id) for log in logs.values()] == [1, 1]


def assert_one_attempt(
    record: JobRecord, taken: JobRecord, settings: Settings, seen: list[JobRecord]
) -> None:
    """The final record is the second attempt's alone, written succeeded once, with one PNG."""
    job_id = record.id
    assert record.status is JobStatus.SUCCEEDED, record.error
    assert record.attempts == 2
    assert (record.render.worker, record.render.pid) == (taken.render.worker, taken.render.pid)
    # Its render time fits inside the second attempt; the first one's began seconds earlier.
    assert record.render_s is not None and record.finished_at is not None
    assert taken.started_at is not None
    assert 0 < record.render_s <= record.finished_at - taken.started_at
    assert [Path(p).name for p in record.outputs] == [f"{job_id}-00.png"]
    assert [p.name for p in settings.results_path.rglob("*.png")] == [f"{job_id}-00.png"]
    assert not list(settings.results_path.rglob(".tmp-*"))
    # Written succeeded once: every later write (the memory guard's note) keeps that one's
    # finish time, and no record ever showed the sleeper as the one that finished it.
    succeeded = [r for r in seen if r.status is JobStatus.SUCCEEDED]
    assert {r.finished_at for r in succeeded} == {record.finished_at}, succeeded
    assert {r.render.pid for r in succeeded} == {record.render.pid}


def renders(fault_dir: Path, job_id: str) -> int:
    log = fault_dir / "renders.log"
    return log.read_text().split().count(job_id) if log.exists() else 0
