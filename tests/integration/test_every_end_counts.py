"""Every way a job ends counts: toward its batch's end (the morning report) and, once per
outcome, in the Prometheus counters, also when a finished job is queued again.

Real redis-server, real `nightshift worker` processes (issue 11, items 4 and 5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from helpers import nightshift

from config import keys as names
from config import records
from config.records import JobStatus, RenderInfo
from config.settings import Settings
from config.store import batches as bs
from config.store import control
from producer.batches.actions import cancel_batch, retry_batch, submit_batch
from producer.client import Client, Job

BATCH = "defaults: {steps: 2, width: 64, height: 64}\nprompts: [one, two, three]\n"


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.1)


def submitted(client: Client, tmp_path: Path, text: str = BATCH) -> str:
    path = tmp_path / "night.yaml"
    path.write_text(text)
    return submit_batch(client, path).batch_id


def counters(client: Client) -> dict[str, float]:
    raw = client.store.redis.hgetall(names.JOB_METRICS)
    return {str(k): float(v) for k, v in raw.items()}


def answering(client: Client) -> bool:
    return bool(client.app.control.ping(timeout=1.0))


def test_a_batch_job_revoked_before_it_started_still_ends_the_batch(
    client: Client, settings: Settings, start_worker, tmp_path: Path
) -> None:
    r = client.store.redis
    control.pause(r)  # the worker takes nothing until the revoke has landed
    batch_id = submitted(client, tmp_path)
    first, second, last = bs.job_ids(r, batch_id)
    start_worker()
    wait_until(lambda: answering(client), 60, "the worker to answer remote control")

    replies = client.app.control.revoke(last, reply=True, timeout=5.0)
    assert replies, "no worker acknowledged the revoke"
    control.resume(r)

    folder = settings.results_path / "batches" / batch_id
    wait_until(lambda: (folder / "index.html").exists(), 180, "the batch's report")
    revoked = Job(client, last).record()
    assert revoked.status is JobStatus.CANCELLED and revoked.error_code == "revoked"
    assert all(Job(client, i).record().status is JobStatus.SUCCEEDED for i in (first, second))
    time.sleep(1)  # a second report would come from the same handler, at once
    assert bs.report_count(r, batch_id) == 1
    assert counters(client)["jobs_finished:cancelled"] == 1


def test_a_dead_lettered_job_requeued_counts_its_failure_and_then_its_success(
    client: Client, settings: Settings, start_worker
) -> None:
    job = client.submit("three dead workers", steps=2, width=64, height=64)
    now = time.time()
    for _ in range(settings.max_attempts):  # each attempt's worker died mid-render
        client.store.update(job.id, lambda rec: records.start(rec, RenderInfo(), now))
    start_worker()
    record = job.wait(timeout=120)
    assert record.status is JobStatus.FAILED and record.error_code == "dead_letter"
    wait_until(lambda: counters(client).get("jobs_finished:failed") == 1, 30, "the failure count")

    assert nightshift(settings, "deadletter", "requeue", job.id).returncode == 0
    assert job.wait(timeout=120).status is JobStatus.SUCCEEDED
    wait_until(
        lambda: counters(client).get("jobs_finished:succeeded") == 1, 30, "the success count"
    )
    seen = counters(client)
    assert seen["jobs_finished:failed"] == 1 and seen["failures:dead_letter"] == 1


def test_a_batch_retry_counts_the_retried_job_s_new_outcome(
    client: Client, settings: Settings, start_worker, tmp_path: Path
) -> None:
    r = client.store.redis
    batch_id = submitted(client, tmp_path, BATCH.replace("one, two, three", "only"))
    assert cancel_batch(client, batch_id) == {"cancelled": 1}
    start_worker()
    wait_until(lambda: bs.report_count(r, batch_id) == 1, 120, "the first report")
    wait_until(lambda: counters(client).get("jobs_finished:cancelled") == 1, 30, "the cancel")

    assert retry_batch(client, batch_id, {JobStatus.CANCELLED}) == 1
    (job_id,) = bs.job_ids(r, batch_id)
    assert Job(client, job_id).wait(timeout=120).status is JobStatus.SUCCEEDED
    wait_until(
        lambda: counters(client).get("jobs_finished:succeeded") == 1, 30, "the success count"
    )
    wait_until(lambda: bs.report_count(r, batch_id) == 2, 30, "the report after the retry")
    assert counters(client)["jobs_finished:cancelled"] == 1
