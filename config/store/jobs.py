"""Job records in Redis: one JSON value per job, plus sorted-set indexes for cheap listing.

The writes are Lua scripts (config/store/lua/create*.lua, compare_and_set.lua), so a record,
its index entries, its announcement and its entry in the event stream (config/store/events.py)
change together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from config import keys as names
from config.errors import JobNotFound
from config.records import JobRecord, JobStatus
from config.settings import Settings
from config.store import events, scripts
from config.store.client import reachable, redis_client

Mutation = Callable[[JobRecord], None]


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

    def update(self, job_id: str, mutate: Mutation) -> JobRecord:
        """Apply mutate to the stored record atomically (optimistic compare-and-set) and
        announce it; a concurrent change makes it read and mutate again."""
        key = names.job_key(job_id)
        with reachable():
            while True:
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
