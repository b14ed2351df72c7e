"""The notification outbox: a Redis stream that every worker's sender reads through one group.

An entry is an event, never a message to someone: its stable id (`job-failed:<job>:<attempt>`,
`batch-finished:<batch>:<report count>`), its kind and its subject (the job or batch id). The
sender (worker/notify/) turns it into deliveries when it reads it, from the record and the
settings, and receivers deduplicate on the id.

Writers: `add` (a failed job, once per event id: a mark and the entry in one transaction, so a
redelivered task that writes the same event again adds nothing), and batch_job_ended.lua (a
batch's end, in the script that counts it: exactly once, the same fields as Event.fields).

Readers (the consumer group OUTBOX_GROUP): `read_new` takes entries nobody took yet; `claim_stale`
takes over those another consumer took and left unacknowledged for a while (its worker died
mid-delivery: at least once, never lost); `done` acknowledges and deletes an entry once every
outcome is recorded, so the stream holds only what is still to deliver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis

from config import keys as names

logger = logging.getLogger(__name__)

JOB_FAILED = "job.failed"
BATCH_FINISHED = "batch.finished"  # also written by lua/batch_job_ended.lua
KINDS = (JOB_FAILED, BATCH_FINISHED)


@dataclass(frozen=True)
class Event:
    """One outbox entry: what happened (kind) to what (subject), under a stable id."""

    id: str
    kind: str
    subject: str

    def fields(self) -> dict[str, str]:
        return {"id": self.id, "kind": self.kind, "subject": self.subject}

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Event | None:
        """The event an entry holds; None for an entry that is not one (written by hand)."""
        values = [fields.get(k) for k in ("id", "kind", "subject")]
        if not all(isinstance(v, str) and v for v in values) or values[1] not in KINDS:
            return None
        return cls(str(values[0]), str(values[1]), str(values[2]))


def job_failed(job_id: str, attempt: int) -> Event:
    return Event(f"job-failed:{job_id}:{attempt}", JOB_FAILED, job_id)


def add(client: redis.Redis, event: Event, ttl_s: int) -> bool:
    """Put an event in the outbox once: False when its id was written already."""
    mark = names.outbox_written_key(event.id)
    added = False

    def transaction(pipe: Any) -> None:
        nonlocal added
        if pipe.exists(mark):
            return
        pipe.multi()
        pipe.set(mark, 1, ex=ttl_s)
        pipe.xadd(names.OUTBOX_STREAM, event.fields())
        added = True

    client.transaction(transaction, mark)
    return added


def ensure_group(client: redis.Redis) -> None:
    """Create the consumer group (and the stream) unless it exists; from the stream's start,
    so events written before any sender ran are delivered too."""
    try:
        client.xgroup_create(names.OUTBOX_STREAM, names.OUTBOX_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


Entry = tuple[str, Event | None]


def read_new(client: redis.Redis, consumer: str, count: int, block_ms: int) -> list[Entry]:
    """Entries no consumer took yet, now this one's (pending until `done`)."""
    reply: Any = client.xreadgroup(
        names.OUTBOX_GROUP, consumer, {names.OUTBOX_STREAM: ">"}, count=count, block=block_ms
    )
    return [_entry(entry_id, fields) for _, entries in reply or [] for entry_id, fields in entries]


def claim_stale(client: redis.Redis, consumer: str, min_idle_s: float, count: int) -> list[Entry]:
    """Entries taken by a consumer that left them unacknowledged for min_idle_s: now ours."""
    reply = client.xautoclaim(
        names.OUTBOX_STREAM,
        names.OUTBOX_GROUP,
        consumer,
        min_idle_time=int(min_idle_s * 1000),
        start_id="0-0",
        count=count,
    )
    # [next start, claimed entries, (Redis 7) ids deleted meanwhile]; a deleted one is None.
    return [_entry(entry_id, fields) for entry_id, fields in reply[1] if fields is not None]


def done(client: redis.Redis, entry_id: str) -> None:
    """Acknowledge and delete an entry whose deliveries are all recorded."""
    with client.pipeline() as pipe:
        pipe.xack(names.OUTBOX_STREAM, names.OUTBOX_GROUP, entry_id)
        pipe.xdel(names.OUTBOX_STREAM, entry_id)
        pipe.execute()


def forget_consumer(client: redis.Redis, consumer: str) -> None:
    """Drop a consumer leaving with nothing pending (a clean stop), so the group keeps no
    trail of every worker process that ever ran."""
    pending = client.xpending_range(
        names.OUTBOX_STREAM, names.OUTBOX_GROUP, "-", "+", 1, consumername=consumer
    )
    if not pending:
        client.xgroup_delconsumer(names.OUTBOX_STREAM, names.OUTBOX_GROUP, consumer)


def _entry(entry_id: Any, fields: Any) -> Entry:
    return str(entry_id), Event.from_fields(dict(fields or {}))
