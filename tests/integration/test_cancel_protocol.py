"""One cancel protocol, used by the producer and the worker's revoke hook, against a real Redis."""

from __future__ import annotations

import time
from typing import Any

import pytest

from config import keys as names
from config import records
from config.errors import ErrorCode
from config.records import JobRecord, JobStatus, RenderInfo
from config.schema import new_job
from config.settings import Settings
from config.store import JobStore, control

NOW = 1_000.0


RENDER = RenderInfo(worker="w@host", pid=42, device="cpu", dtype="float32", model="tiny")


def a_record(**changes: Any) -> JobRecord:
    params = {"id": "job-1", "seed": 1, "steps": 2, "width": 64, "height": 64}
    spec = new_job("a lighthouse", Settings(), created_at=NOW - 10, **params)
    return JobRecord(spec=spec, created_at=NOW - 10).model_copy(update=changes)


@pytest.fixture
def store(redis_url: str) -> JobStore:
    return JobStore.from_settings(Settings(redis_url=redis_url))


def test_a_cancel_ends_a_queued_job_at_once_and_sets_no_key(store: JobStore) -> None:
    store.create(a_record())
    record = control.request_cancel(store, "job-1", 60, "cancelled before it started")
    assert record.status is JobStatus.CANCELLED
    assert (record.error, record.error_code) == ("cancelled before it started", "cancelled")
    assert store.get("job-1") == record
    assert not store.redis.exists(names.cancel_key("job-1"))


def test_a_cancel_of_a_started_job_leaves_it_to_its_worker_through_its_key(
    store: JobStore,
) -> None:
    store.create(a_record())
    store.update("job-1", lambda r: records.start(r, RENDER, time.time()))
    record = control.request_cancel(
        store, "job-1", 60, "revoked before it started", ErrorCode.REVOKED
    )
    assert record.status is JobStatus.STARTED and record.error is None
    assert store.redis.get(names.cancel_key("job-1")) == "1"
    assert 0 < store.redis.ttl(names.cancel_key("job-1")) <= 60


def test_a_cancel_of_a_finished_job_changes_nothing(store: JobStore) -> None:
    store.create(a_record())
    done = store.update("job-1", lambda r: records.succeed(r, ["/r/a.png"], NOW))
    assert control.request_cancel(store, "job-1", 60, "cancelled before it started") == done
    assert not store.redis.exists(names.cancel_key("job-1"))


def test_the_client_and_the_revoke_hook_share_the_one_cancel_protocol(redis_url: str) -> None:
    from producer import client
    from worker.hooks import revoke

    assert client.request_cancel is control.request_cancel
    assert revoke.request_cancel is control.request_cancel
    api = client.Client(Settings(redis_url=redis_url))
    api.store.create(a_record())
    record = api.cancel("job-1")
    assert (record.error, record.error_code) == ("cancelled before it started", "cancelled")
