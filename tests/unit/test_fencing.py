"""Fencing and one clock (issue 11), on records alone: no Redis, no model.

The attempt `records.start` counts is the token every later write of that attempt shows;
a record started again elsewhere refuses it. Dates move onto the Redis server's clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from config import records
from config.errors import ErrorCode, Superseded
from config.records import JobRecord, JobStatus, RenderInfo
from config.schema import new_job
from config.settings import Settings
from producer.client import on_redis_clock
from worker.jobs import fencing

NOW = 1_000_000.0
SLEEPER = RenderInfo(worker="mac", pid=41, device="mps")
OTHER = RenderInfo(worker="linux", pid=77, device="cuda")


def a_record(created_at: float = NOW - 10, **params: Any) -> JobRecord:
    spec = new_job("a lighthouse", Settings(), id="job-1", created_at=created_at, **params)
    return JobRecord(spec=spec, created_at=created_at)


def started_on(record: JobRecord, render: RenderInfo) -> JobRecord:
    records.start(record, render, NOW)
    return record


@pytest.fixture
def held() -> Iterator[JobRecord]:
    """job-1 started by this process (the sleeper), and let go after the test."""
    record = started_on(a_record(), SLEEPER)
    fencing.hold(record)
    yield record
    fencing.release(record.id)


def test_the_attempt_that_started_a_job_still_holds_it() -> None:
    record = started_on(a_record(), SLEEPER)
    records.check_held(record, records.attempt_of(record))


def test_a_job_started_again_elsewhere_refuses_the_first_attempt_naming_the_second() -> None:
    record = started_on(a_record(), SLEEPER)
    first = records.attempt_of(record)
    started_on(record, OTHER)
    with pytest.raises(Superseded) as raised:
        records.check_held(record, first)
    assert str(raised.value) == "job job-1: superseded by attempt 2 on linux pid 77, now started"
    assert raised.value.code is ErrorCode.SUPERSEDED


def test_a_job_that_ended_meanwhile_refuses_the_attempt_too() -> None:
    record = started_on(a_record(), SLEEPER)
    first = records.attempt_of(record)
    records.succeed(record, ["/r/job-1-00.png"], NOW + 5)  # its images found on disk
    with pytest.raises(Superseded, match="attempt 1 on mac pid 41, now succeeded"):
        records.check_held(record, first)


def test_the_same_attempt_number_on_another_process_is_another_attempt() -> None:
    record = started_on(a_record(), SLEEPER)
    records.reset(record)  # a dead-lettered job requeued: attempts count from zero again
    started_on(record, OTHER)
    with pytest.raises(Superseded):
        records.check_held(record, records.Attempt(1, "mac", 41))


def test_a_fenced_write_of_a_superseded_attempt_changes_nothing(held: JobRecord) -> None:
    started_on(held, OTHER)
    before = held.model_copy(deep=True)
    with pytest.raises(Superseded):
        fencing.fenced(lambda r: records.fail(r, "time limit", ErrorCode.TIME_LIMIT, NOW))(held)
    assert held == before


def test_a_fenced_write_of_the_holding_attempt_goes_through(held: JobRecord) -> None:
    fencing.fenced(lambda r: records.fail(r, "time limit", ErrorCode.TIME_LIMIT, NOW))(held)
    assert held.status is JobStatus.FAILED


def test_writes_for_a_job_this_process_never_started_are_not_fenced() -> None:
    record = started_on(a_record(), OTHER)
    fencing.verify(record)
    fencing.fenced(lambda r: records.fail(r, "internal", ErrorCode.INTERNAL, NOW))(record)
    assert record.status is JobStatus.FAILED


def test_the_queue_wait_is_never_negative_even_from_a_date_in_the_future() -> None:
    record = started_on(a_record(created_at=NOW + 3600), SLEEPER)
    assert record.queue_wait_s == 0.0


def test_a_producers_dates_move_onto_the_redis_clock_together() -> None:
    spec = a_record(expires_at=NOW + 1800).spec
    moved = on_redis_clock(spec, offset=-3600.0)
    assert (moved.created_at, moved.expires_at) == (NOW - 10 - 3600, NOW + 1800 - 3600)
    assert moved.model_dump(exclude={"created_at", "expires_at"}) == spec.model_dump(
        exclude={"created_at", "expires_at"}
    )
    assert on_redis_clock(a_record().spec, 5.0).expires_at is None


def test_a_new_attempt_starts_without_the_last_ones_progress() -> None:
    record = started_on(a_record(), SLEEPER)
    record.progress = {"image": 1, "images": 1, "step": 30, "steps": 50}
    assert started_on(record, OTHER).progress == {}
