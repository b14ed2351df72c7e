"""Messages refused at the door: what arrived on a queue, why it was refused, and when.

The worker's inbound guard (worker/hooks/inbound.py) acknowledges every message it will not
run (not a Nightshift envelope, a body that is not our JSON, a group over the size cap, a
job that fails validation) and keeps a copy here, so nothing vanishes without a trace and
nothing is delivered again. The list is capped, newest first: a flood of garbage costs at
most KEEP entries of at most RAW_CHARS characters each. `nightshift deadletter list
--malformed` shows it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis
from pydantic import BaseModel, Field, ValidationError

from config import keys as names
from config import records
from config.errors import ErrorCode
from config.records import JobRecord
from config.store import batches as bs
from config.store.jobs import JobStore

KEEP = 1000
RAW_CHARS = 64 * 1024
KEEP_IDS = 100  # job ids shown per entry (all of them are failed, see fail_unfinished)
REASON_CHARS = 1000  # an exception's text can quote the whole message


class MalformedMessage(BaseModel):
    """One refused message: its raw text (cut at RAW_CHARS), its size and the reason."""

    at: float
    queue: str
    reason: str
    raw: str
    size: int = Field(ge=0, description="length of the raw message, in bytes")
    job_ids: list[str] = Field(default_factory=list)


def raw_text(raw: bytes | str) -> tuple[str, int]:
    """The raw message as text (bytes that are not UTF-8 as \\x escapes), cut, and its size."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    text = data[: RAW_CHARS * 4].decode("utf-8", "backslashreplace")
    return text[:RAW_CHARS], len(data)


def quarantine(
    client: redis.Redis,
    queue: str,
    reason: str,
    raw: bytes | str,
    job_ids: Iterable[str] = (),
    now: float | None = None,
) -> MalformedMessage:
    """Keep a refused message at the head of the list; the oldest beyond KEEP fall off."""
    text, size = raw_text(raw)
    entry = MalformedMessage(
        at=time.time() if now is None else now,
        queue=queue,
        reason=reason[:REASON_CHARS],
        raw=text,
        size=size,
        job_ids=list(job_ids)[:KEEP_IDS],
    )
    with client.pipeline(transaction=True) as pipe:
        pipe.lpush(names.DEADLETTER_MALFORMED, entry.model_dump_json())
        pipe.ltrim(names.DEADLETTER_MALFORMED, 0, KEEP - 1)
        pipe.execute()
    return entry


def malformed_messages(client: redis.Redis, limit: int = KEEP) -> list[MalformedMessage]:
    """The refused messages, newest first."""
    found = []
    for raw in client.lrange(names.DEADLETTER_MALFORMED, 0, max(limit, 1) - 1):
        try:
            found.append(MalformedMessage.model_validate_json(raw))
        except ValidationError:
            continue  # not ours (written by hand): the listing goes on
    return found


def fail_unfinished(
    store: JobStore, job_ids: Iterable[str], reason: str, code: ErrorCode = ErrorCode.MALFORMED
) -> list[JobRecord]:
    """Fail the jobs a refused message names that have a record and have not ended.

    A job whose only message was refused would otherwise wait as `queued` forever. Returns
    the records this call failed (a finished job is left as it ended).
    """
    ids = list(dict.fromkeys(job_ids))
    now, failed = time.time(), []
    for record in bs.job_records(store.redis, ids):
        if record.status.finished:
            continue
        updated = store.update(record.id, lambda r: _fail_unless_finished(r, reason, code, now))
        if updated.error_code == code.value and updated.finished_at == now:
            failed.append(updated)
    return failed


def _fail_unless_finished(record: JobRecord, reason: str, code: ErrorCode, now: float) -> None:
    if not record.status.finished:
        records.fail(record, reason, code, now)
