"""JobStore.read (record + server clock in one round trip) and update's `known` read: the
start and the end of every job lean on them to save round trips (issue 17), so what they
must never do is lose a write or read a clock other than the server's."""

from __future__ import annotations

import time

from config import records
from config.records import JobRecord, JobStatus, RenderInfo
from config.schema import new_job
from config.settings import Settings
from config.store import JobStore

HERE = RenderInfo(worker="here", pid=1, device="cpu")


def stored(settings: Settings, store: JobStore) -> JobRecord:
    spec = new_job("snapshot", settings, seed=1, width=64, height=64, steps=2)
    store.create(JobRecord(spec=spec, created_at=spec.created_at))
    return store.get(spec.id)


def calls(store: JobStore, command: str) -> int:
    return int(store.redis.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_read_gives_the_record_and_the_servers_clock_counted_on_locally(
    settings: Settings,
) -> None:
    store = JobStore.from_settings(settings)
    record = stored(settings, store)

    snapshot = store.read(record.id)
    seconds, micros = store.redis.time()

    assert snapshot.record == record
    assert abs(snapshot.now - (seconds + micros / 1e6)) < 0.5
    time.sleep(0.2)
    assert 0.19 < snapshot.clock() - snapshot.now < 1.0


def test_an_update_from_a_fresh_read_writes_without_reading_again(settings: Settings) -> None:
    store = JobStore.from_settings(settings)
    record = stored(settings, store)
    store.update(record.id, lambda r: None)  # the script loaded: every call below is one EVALSHA
    snapshot = store.read(record.id)
    store.redis.config_resetstat()

    started = store.update(record.id, lambda r: records.start(r, HERE, snapshot.now), snapshot)

    # The one GET is the compare-and-set script's own; an update without `known` reads first.
    assert (calls(store, "get"), calls(store, "evalsha")) == (1, 1)
    store.update(record.id, lambda r: setattr(r, "progress", {"step": 1, "steps": 2}))
    assert (calls(store, "get"), calls(store, "evalsha")) == (3, 2)
    assert started.status is store.get(record.id).status is JobStatus.STARTED


def test_an_update_from_a_stale_read_reads_again_and_loses_no_write(settings: Settings) -> None:
    store = JobStore.from_settings(settings)
    record = stored(settings, store)
    snapshot = store.read(record.id)
    # Another worker starts the job after our read: the known read is stale.
    store.update(record.id, lambda r: records.start(r, HERE, snapshot.now))

    started = store.update(record.id, lambda r: records.start(r, HERE, snapshot.now), snapshot)

    assert started.attempts == store.get(record.id).attempts == 2  # neither start is lost
