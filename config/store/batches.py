"""Batch records in Redis, shared by the producer (submit, status) and the worker (report).

A batch is a hash (`nightshift:batch:<id>`: record, total, reports), the list of its job
ids, the set of those that ended, an entry in the batches index and a digest of its file
(key names and layout: config/keys.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from pydantic import BaseModel

from config import keys as names
from config.errors import InvalidInput
from config.records import JobRecord
from config.store import scripts

READ_CHUNK = 1000


class BatchRecord(BaseModel):
    """What was submitted: enough to list, count and report a batch."""

    id: str
    name: str
    source: str
    digest: str
    created_at: float
    total: int
    priority: int
    queue: str


def load_batch(client: redis.Redis, batch_id: str) -> BatchRecord:
    raw = client.hget(names.batch_key(batch_id), "record")
    if raw is None:
        raise InvalidInput("batch_id", batch_id, "no such batch")
    return BatchRecord.model_validate_json(raw)


def report_count(client: redis.Redis, batch_id: str) -> int:
    """How many times the end-of-batch report has been triggered."""
    return int(client.hget(names.batch_key(batch_id), "reports") or 0)


def note_job_ended(client: redis.Redis, batch_id: str, job_id: str, ttl_s: int) -> bool:
    """Count one ended job of a batch; True for exactly the call that ends the batch.

    Counting is a set, not a counter: a job that ends twice (a redelivered message finding
    its record already final) is added once, so exactly one call can make the set full.
    """
    keys = [names.batch_ended_key(batch_id), names.batch_key(batch_id)]
    return bool(scripts.for_client(client).batch_job_ended(keys=keys, args=[job_id, ttl_s]))


def job_ids(client: redis.Redis, batch_id: str) -> list[str]:
    return [str(i) for i in client.lrange(names.batch_jobs_key(batch_id), 0, -1)]


def job_records(client: redis.Redis, ids: list[str]) -> Iterator[JobRecord]:
    """Records in the order given, read with MGET in chunks; expired ones are skipped."""
    for start in range(0, len(ids), READ_CHUNK):
        keys = [names.job_key(i) for i in ids[start : start + READ_CHUNK]]
        for raw in client.mget(keys):
            if raw is not None:
                yield JobRecord.from_json(raw)
