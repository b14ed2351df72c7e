"""Job records in Redis: one JSON value per job, plus sorted-set indexes for cheap listing.

The writes are Lua scripts (config/store/lua/create*.lua, compare_and_set.lua), so a record,
its index entries, its announcement and its entry in the event stream (config/store/events.py)
change together or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from config import keys as names
from config.errors import JobNotFound
from config.records import JobRecord, JobStatus
from config.settings import Settings
from config.store import events, scripts
from config.store.client import reachable, redis_client

Mutation = Callable[[JobRecord], None]


@dataclass(frozen=True)
class Snapshot:
    """A record as stored, read together with the server's clock in one round trip.

    `raw` lets the next update skip its own read (JobStore.update `known`); `clock()` is the
    server's time now, counted on from the read with this process's monotonic clock (no
    round trip, and no skew of this machine's wall clock).
    """

    record: JobRecord
    raw: bytes | str
    now: float
    read_at: float  # time.monotonic() when the reply came

    def clock(self) -> float:
        return self.now + (time.monotonic() - self.read_at)


class JobStore:
    """Reads and writes job records; every change is also published on the job's channel and
    appended to the event stream."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self.scripts = scripts.for_client(client)

    @classmethod
    def from_settings(cls, settings: Settings, patient: bool = False) -> JobStore:
        return cls(redis_client(settings, patient), settings.record_ttl_s)

    def create(self, record: JobRecord) -> bool:
        """Store a new record; False (and nothing written) if the id is already taken."""
        keys = [names.job_key(record.id), names.JOBS_INDEX, names.status_index(record.status.value)]
        keys.append(names.EVENTS_STREAM)
        args: list[str | float] = [record.to_json(), self.ttl_s, record.created_at, record.id]
        args += [events.CREATED, events.event_data(record, None), events.MAXLEN]
        with reachable():
            return bool(self.scripts.create(keys=keys, args=args))

    def create_many(self, records: list[JobRecord]) -> list[bool]:
        """Like create for each record, in one script call (a batch submit's chunk)."""
        args: list[str | float] = [self.ttl_s, names.JOBS_INDEX, names.EVENTS_STREAM]
        args += [events.MAXLEN, events.CREATED]
        for record in records:
            args += [names.job_key(record.id), record.to_json(), record.created_at, record.id]
            args += [names.status_index(record.status.value), events.event_data(record, None)]
        with reachable():
            created = self.scripts.create_many(keys=[], args=args)
        return [bool(flag) for flag in created]

    def now(self) -> float:
        """The Redis server's clock (TIME), in Unix seconds: every date in a job is read from
        this one clock, so a producer's or a worker's own skewed clock never enters a wait or
        an expiry."""
        with reachable():
            seconds, micros = self.redis.time()
        return float(seconds) + micros / 1_000_000

    def get(self, job_id: str) -> JobRecord:
        with reachable():
            raw = self.redis.get(names.job_key(job_id))
        if raw is None:
            raise JobNotFound(job_id)
        return JobRecord.from_json(raw)

    def read(self, job_id: str) -> Snapshot:
        """The record and the server's clock in one round trip (a job's start and its end)."""
        with reachable():
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(names.job_key(job_id))
            pipe.time()
            raw, (seconds, micros) = pipe.execute()
        read_at = time.monotonic()
        if raw is None:
            raise JobNotFound(job_id)
        now = float(seconds) + micros / 1_000_000
        return Snapshot(JobRecord.from_json(raw), raw, now, read_at)

    def update(self, job_id: str, mutate: Mutation, known: Snapshot | None = None) -> JobRecord:
        """Apply mutate to the stored record atomically (optimistic compare-and-set) and
        announce it; a concurrent change makes it read and mutate again. `known`: a read of
        this record the caller just made, tried first instead of reading again (one round
        trip fewer; a record changed since costs the usual read)."""
        key = names.job_key(job_id)
        raw = known.raw if known is not None else None
        with reachable():
            while True:
                if raw is None:
                    raw = self.redis.get(key)
                    if raw is None:
                        raise JobNotFound(job_id)
                record = JobRecord.from_json(raw)
                before = record.status
                mutate(record)
                keys = [
                    key,
                    names.status_index(before.value),
                    names.status_index(record.status.value),
                    names.EVENTS_STREAM,
                ]
                args: list[str | bytes | float] = [raw, record.to_json(), self.ttl_s, job_id]
                args += [record.created_at, names.job_channel(job_id)]
                args += [events.event_data(record, before), events.kind_of(before, record.status)]
                args.append(events.MAXLEN)
                if self.scripts.compare_and_set(keys=keys, args=args):
                    return record
                raw = None  # changed since it was read: read it again

    def delete(self, job_id: str) -> None:
        """Remove a record and its index entries (used to undo a submit the broker refused)."""
        with reachable():
            pipe = self.redis.pipeline()
            pipe.delete(names.job_key(job_id))
            pipe.zrem(names.JOBS_INDEX, job_id)
            for status in JobStatus:
                pipe.zrem(names.status_index(status.value), job_id)
            pipe.execute()

    def recent(self, status: JobStatus | None = None, limit: int = 20) -> list[JobRecord]:
        """Newest first, read through the index: no key scans."""
        index = names.status_index(status.value) if status else names.JOBS_INDEX
        with reachable():
            ids = [str(i) for i in self.redis.zrevrange(index, 0, max(limit, 1) - 1)]
            raws = self.redis.mget([names.job_key(i) for i in ids]) if ids else []
        return [JobRecord.from_json(raw) for raw in raws if raw is not None]
