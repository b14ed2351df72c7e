"""Job records in Redis: one JSON value per job, plus sorted-set indexes for cheap listing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from config import keys as names
from config.errors import BrokerUnavailable, JobNotFound
from config.records import JobRecord, JobStatus
from config.settings import Settings

Mutation = Callable[[JobRecord], None]

# Record and index entries are written together or not at all.
_CREATE_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  return 1
end
return 0
"""

# The same for many records in one call: thousands of EVALSHAs cost more to encode than
# to run. Key names travel in ARGV, which is fine for the single Redis this project uses.
_CREATE_MANY_LUA = """
local out = {}
for i = 3, #ARGV, 5 do
  local new = redis.call('SET', ARGV[i], ARGV[i + 1], 'NX', 'EX', ARGV[1])
  if new then
    redis.call('ZADD', ARGV[2], ARGV[i + 2], ARGV[i + 3])
    redis.call('ZADD', ARGV[i + 4], ARGV[i + 2], ARGV[i + 3])
  end
  out[#out + 1] = new and 1 or 0
end
return out
"""


# Compare-and-set for update(): the new value is written (with its index move and its
# announcement) only if the record is still what the caller read. One round trip for the
# write instead of WATCH, MULTI and EXEC; a changed record makes the caller read again.
# KEYS: record, old status index, new status index; ARGV: expected, new value, TTL, id,
# created_at, channel, event.
_CAS_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if KEYS[2] ~= KEYS[3] then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""


def redis_client(settings: Settings, patient: bool = False) -> redis.Redis:
    """A client that fails fast when Redis is down instead of hanging the caller.

    patient (the worker's own writes): retry connection errors with backoff for about
    worker_redis_patience_s, so a Redis restart in the middle of a render costs a pause,
    not the finished image.
    """
    options: dict[str, object] = {}
    if patient:
        backoff = ExponentialBackoff(cap=2.0, base=0.1)
        retries = _retries_within(settings.worker_redis_patience_s, backoff)
        options["retry"] = Retry(backoff, retries)
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.broker_connect_timeout_s,
        socket_timeout=max(settings.broker_connect_timeout_s, 10.0),
        health_check_interval=30,
        decode_responses=True,
        **options,
    )


def _retries_within(seconds: float, backoff: ExponentialBackoff) -> int:
    waited, retries = 0.0, 0
    while waited < seconds:
        retries += 1
        waited += backoff.compute(retries)
    return retries


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"Redis is not reachable: {exc}") from None


class JobStore:
    """Reads and writes job records; every change is also published on the job's channel."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self._create_script = client.register_script(_CREATE_LUA)
        self._create_many_script = client.register_script(_CREATE_MANY_LUA)
        self._cas_script = client.register_script(_CAS_LUA)

    @classmethod
    def from_settings(cls, settings: Settings, patient: bool = False) -> JobStore:
        return cls(redis_client(settings, patient), settings.record_ttl_s)

    def create(self, record: JobRecord) -> bool:
        """Store a new record; False (and nothing written) if the id is already taken."""
        keys = [names.job_key(record.id), names.JOBS_INDEX, names.status_index(record.status.value)]
        args: list[str | float] = [record.to_json(), self.ttl_s, record.created_at, record.id]
        with _reachable():
            return bool(self._create_script(keys=keys, args=args))

    def create_many(self, records: list[JobRecord]) -> list[bool]:
        """Like create for each record, in one script call (a batch submit's chunk)."""
        args: list[str | float] = [self.ttl_s, names.JOBS_INDEX]
        for record in records:
            args += [names.job_key(record.id), record.to_json(), record.created_at, record.id]
            args.append(names.status_index(record.status.value))
        with _reachable():
            created = self._create_many_script(keys=[], args=args)
        return [bool(flag) for flag in created]

    def get(self, job_id: str) -> JobRecord:
        with _reachable():
            raw = self.redis.get(names.job_key(job_id))
        if raw is None:
            raise JobNotFound(job_id)
        return JobRecord.from_json(raw)

    def update(self, job_id: str, mutate: Mutation) -> JobRecord:
        """Apply mutate to the stored record atomically (optimistic compare-and-set) and
        announce it; a concurrent change makes it read and mutate again."""
        key = names.job_key(job_id)
        with _reachable():
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
                ]
                args: list[str | bytes | float] = [raw, record.to_json(), self.ttl_s, job_id]
                args += [record.created_at, names.job_channel(job_id), _event(record)]
                if self._cas_script(keys=keys, args=args):
                    return record

    def delete(self, job_id: str) -> None:
        """Remove a record and its index entries (used to undo a submit the broker refused)."""
        with _reachable():
            pipe = self.redis.pipeline()
            pipe.delete(names.job_key(job_id))
            pipe.zrem(names.JOBS_INDEX, job_id)
            for status in JobStatus:
                pipe.zrem(names.status_index(status.value), job_id)
            pipe.execute()

    def recent(self, status: JobStatus | None = None, limit: int = 20) -> list[JobRecord]:
        """Newest first, read through the index: no key scans."""
        index = names.status_index(status.value) if status else names.JOBS_INDEX
        with _reachable():
            ids = [str(i) for i in self.redis.zrevrange(index, 0, max(limit, 1) - 1)]
            raws = self.redis.mget([names.job_key(i) for i in ids]) if ids else []
        return [JobRecord.from_json(raw) for raw in raws if raw is not None]


def _event(record: JobRecord) -> str:
    return json.dumps({"id": record.id, "status": record.status.value, "progress": record.progress})
