"""Batch records in Redis, shared by the producer (submit, status) and the worker (report).

Keys, all under `nightshift:`:
- `batch:<id>`         hash: `record` (BatchRecord JSON), `total`, `reports` (reports written)
- `batch:<id>:jobs`    list of job ids, in submit order
- `batch:<id>:ended`   set of job ids that have ended; when it holds `total`, the report runs
- `batches`            sorted set of batch ids by creation time
- `batch-digest:<sha>` the batch a file's content was submitted as (idempotent resubmit)
- `paused`             set while workers must take no new jobs
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from pydantic import BaseModel

from config.errors import InvalidInput
from config.keys import KEY_PREFIX, job_key
from config.records import JobRecord

BATCHES_INDEX = f"{KEY_PREFIX}:batches"
PAUSE_KEY = f"{KEY_PREFIX}:paused"
READ_CHUNK = 1000


def batch_key(batch_id: str) -> str:
    return f"{KEY_PREFIX}:batch:{batch_id}"


def jobs_key(batch_id: str) -> str:
    return f"{KEY_PREFIX}:batch:{batch_id}:jobs"


def ended_key(batch_id: str) -> str:
    return f"{KEY_PREFIX}:batch:{batch_id}:ended"


def digest_key(digest: str) -> str:
    return f"{KEY_PREFIX}:batch-digest:{digest}"


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
    raw = client.hget(batch_key(batch_id), "record")
    if raw is None:
        raise InvalidInput("batch_id", batch_id, "no such batch")
    return BatchRecord.model_validate_json(raw)


def report_count(client: redis.Redis, batch_id: str) -> int:
    """How many times the end-of-batch report has been triggered."""
    return int(client.hget(batch_key(batch_id), "reports") or 0)


def job_ids(client: redis.Redis, batch_id: str) -> list[str]:
    return [str(i) for i in client.lrange(jobs_key(batch_id), 0, -1)]


def job_records(client: redis.Redis, ids: list[str]) -> Iterator[JobRecord]:
    """Records in the order given, read with MGET in chunks; expired ones are skipped."""
    for start in range(0, len(ids), READ_CHUNK):
        keys = [job_key(i) for i in ids[start : start + READ_CHUNK]]
        for raw in client.mget(keys):
            if raw is not None:
                yield JobRecord.from_json(raw)
