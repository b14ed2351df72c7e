"""The event stream: every change of every job record, in order, with a history.

The job's pub/sub channel (keys.job_channel) has none: a listener that was away for a second
misses what happened in it. So the scripts that write a record (lua/create.lua,
create_many.lua, compare_and_set.lua) also append the change to one Redis Stream,
`events` (config/keys.py), in the same call: a record change and its event exist together or
not at all. The stream keeps about MAXLEN entries (XADD MAXLEN ~, trimmed by whole nodes).

A reader keeps the id of the last entry it saw and reads on from there: the HTTP API's
Server-Sent Events use entry ids as their `id:`, so a client reconnecting with Last-Event-ID
gets every change since, for as long as the stream still holds it (`lost_after` says when it
no longer does). Entries hold `job` (the id), `kind` (KINDS) and `data` (EventData as JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from config import keys as names
from config.records import JobRecord, JobStatus

# About a night of progress for a busy worker (a few events a second), or one big batch's
# creations; past it the oldest entries go, and a reader that far behind is told so.
MAXLEN = 10_000
# What changed: a new record; its status changed (to a finished one: "finished"); or, in the
# same status, its progress ("progress" while started) or anything else ("update").
KINDS = ("created", "status", "finished", "progress", "update")
CREATED = KINDS[0]
START = "0-0"  # before every entry: reading after it reads the whole stream

StreamId = tuple[int, int]
_ID_PART_MAX = 2**64 - 1


@dataclass(frozen=True)
class Event:
    """One stream entry: its id (`<ms>-<seq>`), the job, what changed, and the job's state."""

    id: str
    job: str
    kind: str
    data: dict[str, Any]


def kind_of(before: JobStatus | None, after: JobStatus) -> str:
    """The kind of a change from `before` (None: the record is new) to `after`."""
    if before is None:
        return CREATED
    if before is not after:
        return "finished" if after.finished else "status"
    return "progress" if after is JobStatus.STARTED else "update"


def event_data(record: JobRecord, before: JobStatus | None) -> str:
    """The JSON the scripts publish on the job's channel and append to the stream: the job's
    state after the change, small (no prompt, no spec), `id` first as listeners read it."""
    return json.dumps(
        {
            "id": record.id,
            "status": record.status.value,
            "previous": before.value if before is not None else None,
            "progress": record.progress,
            "images": len(record.outputs),
            "error": record.error,
            "error_code": record.error_code,
            "batch_id": record.spec.batch_id,
            "model": record.spec.model,
        },
        ensure_ascii=False,
    )


def parse_id(text: str) -> StreamId:
    """`<ms>-<seq>` as a pair of ints, to compare; ValueError for anything else."""
    ms, sep, seq = text.partition("-")
    if not (sep and ms.isascii() and ms.isdigit() and seq.isascii() and seq.isdigit()):
        raise ValueError(f"not a stream entry id: {text!r}")
    if len(ms) > 20 or len(seq) > 20 or max(int(ms), int(seq)) > _ID_PART_MAX:
        raise ValueError(f"not a stream entry id: {text!r}")  # both parts are 64-bit in Redis
    return int(ms), int(seq)


def after(entry_id: str) -> str:
    """The smallest id after `entry_id`: XRANGE's start that leaves it out (works before Redis
    6.2's exclusive `(id` ranges)."""
    ms, seq = parse_id(entry_id)
    if seq == _ID_PART_MAX:
        return f"{ms + 1}-0" if ms < _ID_PART_MAX else entry_id  # nothing can follow the last
    return f"{ms}-{seq + 1}"


def last_id(client: redis.Redis) -> str:
    """The newest entry's id, or START when the stream is empty (or does not exist)."""
    newest = client.xrevrange(names.EVENTS_STREAM, count=1)
    return _text(newest[0][0] or START) if newest else START


def read_range(client: redis.Redis, since: str, count: int) -> list[Event]:
    """Up to `count` entries after `since`, oldest first, without waiting."""
    entries = client.xrange(names.EVENTS_STREAM, min=after(since), count=count) or []
    return [_event(entry_id, fields) for entry_id, fields in entries]


def read_new(client: redis.Redis, since: str, block_ms: int, count: int) -> list[Event]:
    """Up to `count` entries after `since`, waiting up to block_ms for the first one."""
    reply = client.xread({names.EVENTS_STREAM: since}, count=count, block=block_ms)
    if not reply:
        return []
    # redis-py answers a list of [stream, entries] (RESP2) or a dict (RESP3).
    streams = reply.items() if isinstance(reply, dict) else reply
    return [_event(i, f) for _name, entries in streams for i, f in _flat(entries)]


def lost_after(client: redis.Redis, since: str) -> bool:
    """Whether an entry after `since` is gone (trimmed, or deleted): a reader resuming there
    missed something. When unsure it says yes: a needless re-read costs little, a silent gap a
    lot."""
    try:
        info = client.xinfo_stream(names.EVENTS_STREAM)
    except redis.ResponseError:  # no stream: nothing was ever written, so nothing lost
        return False
    position = parse_id(since)
    deleted = info.get("max-deleted-entry-id")  # Redis 7: XDEL's newest, not trimming's
    if deleted is not None and parse_id(_text(deleted)) > position:
        return True
    length, added = int(info.get("length", 0)), info.get("entries-added")
    if added is not None and int(added) <= length:
        return False  # Redis 7: nothing was ever removed
    if added is None and length < MAXLEN:
        return False  # before Redis 7: trimming happens at the cap only
    if length == 0:  # everything went: anything written after `since` went with it
        return parse_id(_text(info.get("last-generated-id") or START)) > position
    # Trimming takes the oldest first: what went is older than the first entry left.
    first = info.get("first-entry")
    return first is not None and parse_id(_text(first[0])) > position


def _flat(entries: Any) -> list[tuple[Any, Any]]:
    return [(entry[0], entry[1]) for entry in entries]


def _event(entry_id: Any, fields: Any) -> Event:
    raw = {_text(k): _text(v) for k, v in dict(fields).items()}
    try:
        data = json.loads(raw.get("data", "{}"))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}  # not ours (XADD by hand): still an entry, so ids stay in order
    return Event(_text(entry_id), raw.get("job", ""), raw.get("kind", "update"), data)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
