"""Batch records in Redis, shared by the producer (submit, status) and the worker (report).

A batch is a hash (`nightshift:batch:<id>`: record, total, reports), the list of its job
ids, the set of those that ended, an entry in the batches index and a digest of its file
(key names and layout: config/keys.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from pydantic import BaseModel, Field

from config import keys as names
from config.errors import InvalidInput
from config.records import Delivery, JobRecord
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
    # How its prompts were expanded (`dynamicprompts 0.31.0, random`), so a re-run can tell
    # whether the same file would expand the same way; None for batches from before.
    expander: str | None = None
    # Targets of its "batch finished" notification (the file's `notify:`), checked at submit.
    notify: list[str] = Field(default_factory=list)


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
    its record already final) is added once, so exactly one call can make the set full. That
    call also writes the batch's "batch finished" event into the notification outbox
    (config/store/outbox.py), in the same script.
    """
    keys = [names.batch_ended_key(batch_id), names.batch_key(batch_id), names.OUTBOX_STREAM]
    args: list[str | int] = [job_id, ttl_s, batch_id]
    return bool(scripts.for_client(client).batch_job_ended(keys=keys, args=args))


def note_delivery(client: redis.Redis, batch_id: str, delivery: Delivery, ttl_s: int) -> None:
    """Keep the outcome of one notification about the batch (one per event and target: a
    delivery redone after its sender died replaces the first outcome)."""
    key = names.batch_notified_key(batch_id)
    with client.pipeline() as pipe:
        pipe.hset(key, f"{delivery.event} {delivery.target_key}", delivery.model_dump_json())
        pipe.expire(key, ttl_s)
        pipe.execute()


def deliveries(client: redis.Redis, batch_id: str) -> list[Delivery]:
    """The outcomes of the batch's notifications, oldest first."""
    raw = client.hvals(names.batch_notified_key(batch_id))
    return sorted((Delivery.model_validate_json(r) for r in raw), key=lambda d: d.at)


def job_ids(client: redis.Redis, batch_id: str) -> list[str]:
    return [str(i) for i in client.lrange(names.batch_jobs_key(batch_id), 0, -1)]


def job_records(client: redis.Redis, ids: list[str]) -> Iterator[JobRecord]:
    """Records in the order given, read with MGET in chunks; expired ones are skipped."""
    for start in range(0, len(ids), READ_CHUNK):
        keys = [names.job_key(i) for i in ids[start : start + READ_CHUNK]]
        for raw in client.mget(keys):
            if raw is not None:
                yield JobRecord.from_json(raw)
