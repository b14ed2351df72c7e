"""Cancelling by id: queued jobs never start, a running job stops at its next step."""

from __future__ import annotations

import time

from config.records import JobStatus
from producer.client import Client


def test_a_queued_job_cancelled_before_any_worker_runs_never_renders(
    client: Client, start_worker
) -> None:
    job = client.submit("never", steps=2, width=64, height=64)
    assert job.cancel().status is JobStatus.CANCELLED
    after = client.submit("after", steps=2, width=64, height=64)
    start_worker()

    assert after.wait(120).status is JobStatus.SUCCEEDED
    record = job.record()
    assert record.status is JobStatus.CANCELLED
    assert record.outputs == [] and record.attempts == 0


def test_a_running_job_stops_at_the_next_step_and_the_model_stays_warm(
    client: Client, worker
) -> None:
    long = client.submit("long", steps=400, width=64, height=64)
    deadline = time.monotonic() + 60
    while long.record().progress.get("step", 0) < 3:
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(0.05)
    long.cancel()
    record = long.wait(60)

    assert record.status is JobStatus.CANCELLED
    assert "cancelled at step" in (record.error or "")
    assert record.outputs == []
    assert not list(client.settings.results_path.rglob("*.png"))
    nxt = client.submit("next", steps=2, width=64, height=64).wait(120)
    assert nxt.status is JobStatus.SUCCEEDED
    assert nxt.render.pid == record.render.pid  # same process: no reload, still warm
